/* rope.cu: rotary position embedding, rotate-half layout (pairs i, i + Dh/2), in place on bf16
 * x [T, nh, Dh]. One block per token: its threads first form the Dh/2 (cos, sin) pairs of
 * that token's position in shared memory, then rotate every head with them, so the costly
 * part (an accurate sincosf per frequency) is done once per token, not per head. The angles
 * follow the CPU reference exactly: the same host-computed inv_freq table (rope scaling
 * included), angle = float(pos) * inv_freq in float, and full-range sincosf
 * (never the __sinf intrinsics, whose error grows with the angle: positions reach 10^5). */
#include "ops_cuda.h"

#include <cuda_bf16.h>

#define ROPE_THREADS 128

static __global__ void __launch_bounds__(ROPE_THREADS)
rope_kernel(__nv_bfloat16 *__restrict__ x, const int32_t *__restrict__ pos,
            const float *__restrict__ inv_freq, int nh, int Dh) {
    extern __shared__ float cs[]; /* cos [half], then sin [half] */
    int t = blockIdx.x, half = Dh / 2;
    float p = (float)pos[t];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float s, c;
        sincosf(p * inv_freq[i], &s, &c);
        cs[i] = c;
        cs[half + i] = s;
    }
    __syncthreads();
    __nv_bfloat16 *xt = x + (size_t)t * nh * Dh;
    for (int k = threadIdx.x; k < nh * half; k += blockDim.x) {
        int h = k / half, i = k - h * half;
        __nv_bfloat16 *v = xt + (size_t)h * Dh;
        float a = __bfloat162float(v[i]), b = __bfloat162float(v[i + half]);
        float c = cs[i], s = cs[half + i];
        v[i] = __float2bfloat16_rn(a * c - b * s);
        v[i + half] = __float2bfloat16_rn(b * c + a * s);
    }
}

extern "C" cudaError_t hp_cuda_rope(hp_bf16 *x, const int32_t *pos, const float *inv_freq, int T,
                                    int nh, int Dh, cudaStream_t st) {
    if (T < 0 || nh <= 0 || Dh <= 0 || Dh % 2) return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    rope_kernel<<<T, ROPE_THREADS, sizeof(float) * (size_t)Dh, st>>>((__nv_bfloat16 *)x, pos,
                                                                     inv_freq, nh, Dh);
    return cudaGetLastError();
}
