/* convert.cu: element-type conversions between the host's float32 and the device's bf16
 * (upload/download), and the bf16 hi/lo split used to feed float32 operands to bf16 GEMMs.
 * All three are bandwidth-bound grid-stride loops; uploads are PCIe-bound anyway, so the
 * kernels stay scalar and simple. Rounding is round-to-nearest-even with NaN kept NaN, as
 * hp_f32_to_bf16 does on the host. */
#include "ops_cuda.h"

#include <cuda_bf16.h>

/* Enough blocks to fill any current GPU several times over; the loops stride beyond that. */
#define CONV_THREADS 256
#define CONV_MAX_BLOCKS 4096

static unsigned conv_blocks(size_t n) {
    size_t b = (n + CONV_THREADS - 1) / CONV_THREADS;
    return (unsigned)(b < CONV_MAX_BLOCKS ? (b ? b : 1) : CONV_MAX_BLOCKS);
}

static __global__ void f32_to_bf16_kernel(__nv_bfloat16 *__restrict__ dst,
                                          const float *__restrict__ src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

static __global__ void bf16_to_f32_kernel(float *__restrict__ dst,
                                          const __nv_bfloat16 *__restrict__ src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __bfloat162float(src[i]);
}

/* hi = bf16(x); lo = bf16(x - hi). x - hi is exact in fp32 (Sterbenz), so hi + lo carries the
 * top 16 significant bits of x. Non-finite x: lo = 0 so that hi + lo reproduces inf/NaN. */
static __global__ void split_kernel(__nv_bfloat16 *__restrict__ hi, __nv_bfloat16 *__restrict__ lo,
                                    const float *__restrict__ src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = src[i];
        __nv_bfloat16 h = __float2bfloat16_rn(x);
        float r = x - __bfloat162float(h);
        hi[i] = h;
        lo[i] = __float2bfloat16_rn(isfinite(r) ? r : 0.0f);
    }
}

extern "C" cudaError_t hp_cuda_f32_to_bf16(hp_bf16 *dst, const float *src, size_t n,
                                           cudaStream_t st) {
    if (n == 0) return cudaSuccess;
    f32_to_bf16_kernel<<<conv_blocks(n), CONV_THREADS, 0, st>>>((__nv_bfloat16 *)dst, src, n);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_bf16_to_f32(float *dst, const hp_bf16 *src, size_t n,
                                           cudaStream_t st) {
    if (n == 0) return cudaSuccess;
    bf16_to_f32_kernel<<<conv_blocks(n), CONV_THREADS, 0, st>>>(dst, (const __nv_bfloat16 *)src, n);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_f32_split_bf16(hp_bf16 *hi, hp_bf16 *lo, const float *src, size_t n,
                                              cudaStream_t st) {
    if (n == 0) return cudaSuccess;
    split_kernel<<<conv_blocks(n), CONV_THREADS, 0, st>>>((__nv_bfloat16 *)hi, (__nv_bfloat16 *)lo,
                                                          src, n);
    return cudaGetLastError();
}
