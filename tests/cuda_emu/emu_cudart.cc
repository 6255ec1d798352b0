/* emu_cudart.cc (cuda_emu): the CUDA runtime calls headpursuit makes, on host memory. Streams
 * and events are synchronous (every call completes before it returns); device memory is
 * posix_memalign'd (256-byte aligned like cudaMalloc, AddressSanitizer redzones around it) and
 * filled with 0xff bytes (NaN) so that reads of never-written memory show. One device,
 * "cuda_emu", compute capability 9.0, 132 SMs, HP_EMU_MEM_MIB MiB (default 16384). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <map>

#include "cuda_runtime_api.h"

namespace {

struct Alloc {
    size_t bytes;
    int device; /* 1 cudaMalloc, 0 cudaMallocHost */
};
std::map<uintptr_t, Alloc> allocs;
size_t used_bytes;
cudaError_t last_error = cudaSuccess;

size_t total_bytes() {
    const char *s = getenv("HP_EMU_MEM_MIB");
    return (s ? strtoull(s, nullptr, 0) : 16384ull) << 20;
}

cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

/* The allocation holding [p, p+n), or nullptr. */
const std::pair<const uintptr_t, Alloc> *find(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin()) return nullptr;
    --it;
    if (a + n > it->first + it->second.bytes && !(n == 0 && a == it->first)) return nullptr;
    return &*it;
}

int is_dev(const void *p, size_t n) {
    auto *a = find(p, n);
    return a && a->second.device;
}

/* cudaMemcpy directions: a device side must lie in a device allocation. */
cudaError_t check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind k) {
    int dd = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
    int sd = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
    if (k > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
    if ((dd && !is_dev(dst, n)) || (sd && !is_dev(src, n))) return cudaErrorInvalidValue;
    if (k == cudaMemcpyDefault && ((is_dev(dst, 1) && !is_dev(dst, n)) || (is_dev(src, 1) && !is_dev(src, n))))
        return cudaErrorInvalidValue;
    return cudaSuccess;
}

} /* namespace */

struct hp_emu_stream {
    unsigned flags;
};
struct hp_emu_event {
    double t;
};

extern "C" {

void hp_emu_set_error(cudaError_t e) { last_error = e; }
int hp_emu_is_device_range(const void *p, size_t n) { return is_dev(p, n); }

cudaError_t cudaGetDeviceCount(int *count) {
    if (getenv("HP_EMU_NO_DEVICE")) { /* lets the tests' skip path be exercised */
        *count = 0;
        return fail(cudaErrorNoDevice);
    }
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    if (device != 0) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "cuda_emu (CPU emulation of the CUDA thread model)");
    p->totalGlobalMem = total_bytes();
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->l2CacheSize = 50 << 20;
    p->memoryBusWidth = 5120;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *device) {
    *device = 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaErrorUnknown";
    }
}
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return cudaGetErrorName(e);
    }
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = nullptr;
    if (bytes > total_bytes() - used_bytes) return fail(cudaErrorMemoryAllocation);
    if (posix_memalign(p, 256, bytes ? bytes : 1)) return fail(cudaErrorMemoryAllocation);
    memset(*p, 0xff, bytes);
    allocs[(uintptr_t)*p] = Alloc{bytes, 1};
    used_bytes += bytes;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || !it->second.device) return fail(cudaErrorInvalidValue);
    used_bytes -= it->second.bytes;
    allocs.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) {
    if (posix_memalign(p, 256, bytes ? bytes : 1)) return fail(cudaErrorMemoryAllocation);
    allocs[(uintptr_t)*p] = Alloc{bytes, 0};
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || it->second.device) return fail(cudaErrorInvalidValue);
    allocs.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    *tot = total_bytes();
    *fr = *tot - used_bytes;
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p) {
    memset(a, 0, sizeof *a);
    auto *al = find(p, 0);
    if (!al) al = find(p, 1);
    a->type = !al ? cudaMemoryTypeUnregistered : al->second.device ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
    a->devicePointer = al && al->second.device ? (void *)p : nullptr;
    a->hostPointer = al && al->second.device ? nullptr : (void *)p;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind k) {
    if (n == 0) return cudaSuccess;
    cudaError_t e = check_copy(dst, src, n, k);
    if (e != cudaSuccess) return fail(e);
    memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, cudaStream_t st) {
    (void)st;
    return cudaMemcpy(dst, src, n, k);
}

cudaError_t cudaMemset(void *p, int v, size_t n) {
    if (n == 0) return cudaSuccess;
    if (!is_dev(p, n)) return fail(cudaErrorInvalidValue);
    memset(p, v, n);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st) {
    (void)st;
    return cudaMemset(p, v, n);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *st, unsigned flags) {
    *st = new hp_emu_stream{flags};
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *st) { return cudaStreamCreateWithFlags(st, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t st) {
    delete st;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t st) {
    (void)st;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *ev) {
    *ev = new hp_emu_event{0};
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
    delete ev;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t st) {
    (void)st;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ev->t = ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
    (void)ev;
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}

} /* extern "C" */
