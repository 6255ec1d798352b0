/* emu_device.h (cuda_emu): the CUDA device model for kernels compiled as host C++.
 *
 * Every CUDA thread of a block is a fiber (emu_sched.cc); the fibers of a block run one at a
 * time on the calling thread, in an order shuffled per block, and switch only at barriers:
 * __syncthreads (all live threads of the block) and the warp-synchronous operations (all live
 * lanes of the warp, whose masks must name exactly those lanes). Data crosses between lanes
 * only through those operations, so a kernel that needs a barrier it does not have reads stale
 * or poisoned shared memory here, as it may on a GPU.
 *
 * Shared memory: tests/cuda_emu/rewrite_cu.py turns each `__shared__` declaration into a
 * reference into a per-block allocation (hp_emu::shared_array / shared_dynamic), filled with
 * 0xff bytes (NaN, -1) when the block starts and checked by AddressSanitizer, so reads of
 * unwritten shared memory and out-of-bounds accesses show. The tensor-core helpers of
 * attention.cu (mma.sync m16n8k16 bf16, ldmatrix x4 trans) are served by hp_emu_mma_bf16_16816
 * and hp_emu_ldmatrix_x4_trans from the PTX ISA fragment layouts. */
#ifndef HP_EMU_DEVICE_H
#define HP_EMU_DEVICE_H

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

/* ---- vector types ---------------------------------------------------------------------------- */

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

/* ---- bit casts and integer min/max ----------------------------------------------------------- */

template <class To, class From> static inline To hp_emu_bits(From f) {
    static_assert(sizeof(To) == sizeof(From), "bit cast of unequal sizes");
    To t;
    memcpy(&t, &f, sizeof t);
    return t;
}
static inline float __int_as_float(int i) { return hp_emu_bits<float>(i); }
static inline int __float_as_int(float f) { return hp_emu_bits<int>(f); }
static inline float __uint_as_float(unsigned i) { return hp_emu_bits<float>(i); }
static inline unsigned __float_as_uint(float f) { return hp_emu_bits<unsigned>(f); }
static inline double __longlong_as_double(long long i) { return hp_emu_bits<double>(i); }
static inline long long __double_as_longlong(double d) { return hp_emu_bits<long long>(d); }

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

/* ---- the thread model ------------------------------------------------------------------------ */

namespace hp_emu {

struct Thread {
    uint3 idx;
    unsigned lane, warp;
};
extern Thread *cur;                 /* the running CUDA thread */
extern uint3 block_idx;
extern dim3 block_dim, grid_dim;

void syncthreads();
int syncthreads_reduce(int pred, int op); /* 0 count, 1 and, 2 or */
/* Warp collective: deposits n <= 32 bytes, waits for the warp, returns the 32 lanes' deposits
 * (stride 32 bytes), valid until this lane's next-but-one warp operation. */
const unsigned char *warp_exchange(unsigned mask, const void *mine, size_t n, const char *op);
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Shared memory of the running block: slot `id` (one per declaration, numbered by
 * rewrite_cu.py) of `bytes` bytes, allocated by the first thread that reaches it. */
void *shared_slot(int id, size_t bytes, const char *name);
void *shared_dynamic();

template <class T> static inline T &shared_var(int id, const char *name) {
    return *static_cast<T *>(shared_slot(id, sizeof(T), name));
}
template <class A> static inline A &shared_array(int id, const char *name) {
    return *static_cast<A *>(shared_slot(id, sizeof(A), name));
}

/* Kernel launch: runs the grid to completion (streams are synchronous here). */
struct LaunchCfg {
    dim3 grid, block;
    size_t smem;
    cudaStream_t st;
};
static inline LaunchCfg cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t st = 0) {
    return LaunchCfg{g, b, smem, st};
}
void run_grid(const char *name, const LaunchCfg &c, void (*body)(void *), void *ctx);

template <class... P, class... A>
static inline void launch(const char *name, const LaunchCfg &c, void (*k)(P...), A &&...a) {
    /* parameters are converted and copied once, at the launch, as cudaLaunchKernel does */
    std::tuple<typename std::decay<P>::type...> params(std::forward<A>(a)...);
    struct Ctx {
        void (*k)(P...);
        decltype(params) *p;
    } ctx{k, &params};
    run_grid(name, c, [](void *v) {
        Ctx *x = static_cast<Ctx *>(v);
        std::apply(x->k, *x->p);
    }, &ctx);
}

template <class T> static inline T shfl(unsigned mask, T v, int mode, int arg, int width) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 64 bits");
    if (width <= 0 || width > 32 || (width & (width - 1)))
        fatal("__shfl*_sync: width %d is not a power of two in [1, 32]", width);
    const unsigned char *all = warp_exchange(mask, &v, sizeof v, "__shfl_sync");
    int lane = (int)cur->lane, base = lane & ~(width - 1), src = lane;
    switch (mode) {
    case 0: src = base + (arg & (width - 1)); break;                    /* idx */
    case 1: src = (lane - base) >= arg ? lane - arg : lane; break;       /* up */
    case 2: src = (lane - base) + arg < width ? lane + arg : lane; break; /* down */
    default: src = lane ^ arg; if (src >= base + width) src = lane; break; /* xor */
    }
    if (src < 0 || src > 31 || !((mask >> src) & 1u))
        fatal("__shfl*_sync: lane %d reads lane %d, which is not in the mask %#x", lane, src, mask);
    T r;
    memcpy(&r, all + 32 * src, sizeof r);
    return r;
}

} /* namespace hp_emu */

#define threadIdx (::hp_emu::cur->idx)
#define blockIdx (::hp_emu::block_idx)
#define blockDim (::hp_emu::block_dim)
#define gridDim (::hp_emu::grid_dim)
#define warpSize 32

static inline void __syncthreads() { hp_emu::syncthreads(); }
static inline int __syncthreads_count(int p) { return hp_emu::syncthreads_reduce(p, 0); }
static inline int __syncthreads_and(int p) { return hp_emu::syncthreads_reduce(p, 1); }
static inline int __syncthreads_or(int p) { return hp_emu::syncthreads_reduce(p, 2); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { hp_emu::warp_exchange(mask, nullptr, 0, "__syncwarp"); }

template <class T> static inline T __shfl_sync(unsigned m, T v, int src, int w = 32) { return hp_emu::shfl(m, v, 0, src, w); }
template <class T> static inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32) { return hp_emu::shfl(m, v, 1, (int)d, w); }
template <class T> static inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) { return hp_emu::shfl(m, v, 2, (int)d, w); }
template <class T> static inline T __shfl_xor_sync(unsigned m, T v, int lm, int w = 32) { return hp_emu::shfl(m, v, 3, lm, w); }

static inline unsigned __ballot_sync(unsigned mask, int pred) {
    int p = pred != 0;
    const unsigned char *all = hp_emu::warp_exchange(mask, &p, sizeof p, "__ballot_sync");
    unsigned r = 0;
    for (int l = 0; l < 32; l++)
        if ((mask >> l) & 1u) {
            int q;
            memcpy(&q, all + 32 * l, sizeof q);
            r |= (unsigned)q << l;
        }
    return r;
}
static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

/* Atomics: the fibers of the emulator never interleave between two barriers, so a plain
 * read-modify-write is atomic. */
template <class T, class U> static inline T atomicAdd(T *p, U u) { T v = (T)u; T o = *p; *p = o + v; return o; }
template <class T, class U> static inline T atomicSub(T *p, U u) { T v = (T)u; T o = *p; *p = o - v; return o; }
template <class T, class U> static inline T atomicOr(T *p, U u) { T v = (T)u; T o = *p; *p = o | v; return o; }
template <class T, class U> static inline T atomicAnd(T *p, U u) { T v = (T)u; T o = *p; *p = o & v; return o; }
template <class T, class U> static inline T atomicMin(T *p, U u) { T v = (T)u; T o = *p; *p = v < o ? v : o; return o; }
template <class T, class U> static inline T atomicMax(T *p, U u) { T v = (T)u; T o = *p; *p = v > o ? v : o; return o; }
template <class T, class U> static inline T atomicExch(T *p, U u) { T v = (T)u; T o = *p; *p = v; return o; }
template <class T> static inline T atomicCAS(T *p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }

/* The tensor-core helpers of attention.cu (kernels use these names under HP_CUDA_EMU). */
void hp_emu_mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
void hp_emu_ldmatrix_x4_trans(uint32_t r[4], const void *p);

#endif
