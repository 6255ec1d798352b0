/* norm.cu: RMSNorm (the decoder) and LayerNorm with bias (CLIP: the mean, then the variance
 * around it, two passes as the CPU, since E[x²]−E[x]² cancels when |mean| >> std) over rows of
 * bf16 activations with bf16 weights, fp32 accumulation. One block per row: rows are 10^2..10^4
 * wide and T ranges from 1 (decode) to thousands, so a row per block gives enough blocks in
 * prefill and keeps the reduction in one block in decode.
 * The scale is formed with IEEE sqrt and division (not rsqrtf) so that it matches the CPU
 * reference to an ulp; the output is rounded to bf16 once, from (x·r)·w in fp32 as the CPU
 * computes it. */
#include "ops_cuda.h"

#include <cuda_bf16.h>

#define NORM_THREADS 256

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Block-wide sum; every thread gets the result. */
static __device__ float block_sum(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* a previous call's readers of red are done (layernorm calls it twice) */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* out may alias x: each element is read and written by the same thread, and every read of the
 * row happens before the last barrier in the second block_sum. */
static __global__ void __launch_bounds__(NORM_THREADS)
layernorm_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *x, const __nv_bfloat16 *__restrict__ w,
                 const __nv_bfloat16 *__restrict__ b, int D, float eps) {
    __shared__ float red[32];
    const __nv_bfloat16 *xr = x + (size_t)blockIdx.x * D;
    __nv_bfloat16 *o = out + (size_t)blockIdx.x * D;
    float s = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) s += __bfloat162float(xr[i]);
    float mean = block_sum(s, red) / (float)D, ss = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float d = __bfloat162float(xr[i]) - mean;
        ss += d * d;
    }
    float r = 1.0f / sqrtf(block_sum(ss, red) / (float)D + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        o[i] = __float2bfloat16_rn((__bfloat162float(xr[i]) - mean) * r * __bfloat162float(w[i]) +
                                   __bfloat162float(b[i]));
}

/* out may alias x: each element is read and written by the same thread, and the reads of the
 * first pass finish before the barrier inside block_sum. Hence no __restrict__ on out/x. */
static __global__ void __launch_bounds__(NORM_THREADS)
rmsnorm_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *x, const __nv_bfloat16 *__restrict__ w,
               int D, float eps, int vec) {
    __shared__ float red[32];
    const __nv_bfloat16 *xr = x + (size_t)blockIdx.x * D;
    __nv_bfloat16 *o = out + (size_t)blockIdx.x * D;
    float ss = 0.0f;
    if (vec) {
        for (int c = threadIdx.x; c < D / 8; c += blockDim.x) {
            uint4 u = ((const uint4 *)xr)[c];
            const __nv_bfloat162 *b = (const __nv_bfloat162 *)&u;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float2 f = __bfloat1622float2(b[k]);
                ss += f.x * f.x + f.y * f.y;
            }
        }
    } else {
        for (int i = threadIdx.x; i < D; i += blockDim.x) {
            float f = __bfloat162float(xr[i]);
            ss += f * f;
        }
    }
    ss = block_sum(ss, red);
    float r = 1.0f / sqrtf(ss / (float)D + eps);
    if (vec) {
        for (int c = threadIdx.x; c < D / 8; c += blockDim.x) {
            uint4 u = ((const uint4 *)xr)[c], wu = ((const uint4 *)w)[c], res;
            const __nv_bfloat162 *b = (const __nv_bfloat162 *)&u, *wb = (const __nv_bfloat162 *)&wu;
            __nv_bfloat162 *rb = (__nv_bfloat162 *)&res;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float2 f = __bfloat1622float2(b[k]), g = __bfloat1622float2(wb[k]);
                rb[k] = __floats2bfloat162_rn((f.x * r) * g.x, (f.y * r) * g.y);
            }
            ((uint4 *)o)[c] = res;
        }
    } else {
        for (int i = threadIdx.x; i < D; i += blockDim.x)
            o[i] = __float2bfloat16_rn((__bfloat162float(xr[i]) * r) * __bfloat162float(w[i]));
    }
}

extern "C" cudaError_t hp_cuda_rmsnorm(hp_bf16 *out, const hp_bf16 *x, const hp_bf16 *w, int T,
                                       int D, float eps, cudaStream_t st) {
    if (T < 0 || D <= 0) return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    int vec = D % 8 == 0 && aligned16(out) && aligned16(x) && aligned16(w);
    rmsnorm_kernel<<<T, NORM_THREADS, 0, st>>>((__nv_bfloat16 *)out, (const __nv_bfloat16 *)x,
                                               (const __nv_bfloat16 *)w, D, eps, vec);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_layernorm(hp_bf16 *out, const hp_bf16 *x, const hp_bf16 *w,
                                         const hp_bf16 *b, int T, int D, float eps,
                                         cudaStream_t st) {
    if (T < 0 || D <= 0) return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    layernorm_kernel<<<T, NORM_THREADS, 0, st>>>((__nv_bfloat16 *)out, (const __nv_bfloat16 *)x,
                                                (const __nv_bfloat16 *)w, (const __nv_bfloat16 *)b,
                                                D, eps);
    return cudaGetLastError();
}
