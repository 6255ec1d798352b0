/* act.cu: the element-wise ops of the MLP and the residual stream on bf16: the gated MLP
 * out = act(gate)·up (silu, erf gelu, tanh gelu, relu: the CPU's formulas in act.c) and
 * x += y. Memory-bound: 16-byte accesses over the bulk, a scalar tail, grid-stride loops.
 * Math in fp32 with the accurate expf/erff/tanhf, rounded to bf16 once. out may alias gate or
 * up (the decoder writes it in place): every element is read and written by the same thread. */
#include "ops_cpu.h" /* HP_GLU_* */
#include "ops_cuda.h"

#include <cuda_bf16.h>

#define ACT_THREADS 256
#define ACT_MAX_BLOCKS 4096

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static unsigned act_blocks(size_t n) {
    size_t b = (n + ACT_THREADS - 1) / ACT_THREADS;
    return (unsigned)(b < ACT_MAX_BLOCKS ? (b ? b : 1) : ACT_MAX_BLOCKS);
}

/* act is uniform over the launch: the switch does not diverge. */
static __device__ __forceinline__ float act_mul(float g, float u, int act) {
    switch (act) {
    case HP_GLU_GELU: return 0.5f * g * (1.0f + erff(g * 0.70710678118654752f)) * u;
    case HP_GLU_GELU_TANH:
        return 0.5f * g * (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))) * u;
    case HP_GLU_RELU: return (g > 0.0f ? g : 0.0f) * u;
    default: return g / (1.0f + expf(-g)) * u;
    }
}

/* nvec 8-element vectors first (only when every pointer is 16-byte aligned), then the tail. */
static __global__ void glu_kernel(__nv_bfloat16 *out, const __nv_bfloat16 *gate,
                                  const __nv_bfloat16 *up, size_t n, size_t nvec, int act) {
    size_t stride = (size_t)gridDim.x * blockDim.x, i0 = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t c = i0; c < nvec; c += stride) {
        uint4 gu = ((const uint4 *)gate)[c], uu = ((const uint4 *)up)[c], res;
        const __nv_bfloat162 *g = (const __nv_bfloat162 *)&gu, *u = (const __nv_bfloat162 *)&uu;
        __nv_bfloat162 *r = (__nv_bfloat162 *)&res;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 a = __bfloat1622float2(g[k]), b = __bfloat1622float2(u[k]);
            r[k] = __floats2bfloat162_rn(act_mul(a.x, b.x, act), act_mul(a.y, b.y, act));
        }
        ((uint4 *)out)[c] = res;
    }
    for (size_t i = nvec * 8 + i0; i < n; i += stride)
        out[i] = __float2bfloat16_rn(act_mul(__bfloat162float(gate[i]), __bfloat162float(up[i]), act));
}

static __global__ void add_kernel(__nv_bfloat16 *x, const __nv_bfloat16 *y, size_t n, size_t nvec) {
    size_t stride = (size_t)gridDim.x * blockDim.x, i0 = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t c = i0; c < nvec; c += stride) {
        uint4 xu = ((const uint4 *)x)[c], yu = ((const uint4 *)y)[c], res;
        const __nv_bfloat162 *a = (const __nv_bfloat162 *)&xu, *b = (const __nv_bfloat162 *)&yu;
        __nv_bfloat162 *r = (__nv_bfloat162 *)&res;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 p = __bfloat1622float2(a[k]), q = __bfloat1622float2(b[k]);
            r[k] = __floats2bfloat162_rn(p.x + q.x, p.y + q.y);
        }
        ((uint4 *)x)[c] = res;
    }
    for (size_t i = nvec * 8 + i0; i < n; i += stride)
        x[i] = __float2bfloat16_rn(__bfloat162float(x[i]) + __bfloat162float(y[i]));
}

extern "C" cudaError_t hp_cuda_glu(hp_bf16 *out, const hp_bf16 *gate, const hp_bf16 *up,
                                   size_t n, int act, cudaStream_t st) {
    if (n == 0) return cudaSuccess;
    size_t nvec = aligned16(out) && aligned16(gate) && aligned16(up) ? n / 8 : 0;
    glu_kernel<<<act_blocks(nvec ? nvec : n), ACT_THREADS, 0, st>>>(
        (__nv_bfloat16 *)out, (const __nv_bfloat16 *)gate, (const __nv_bfloat16 *)up, n, nvec, act);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_add(hp_bf16 *x, const hp_bf16 *y, size_t n, cudaStream_t st) {
    if (n == 0) return cudaSuccess;
    size_t nvec = aligned16(x) && aligned16(y) ? n / 8 : 0;
    add_kernel<<<act_blocks(nvec ? nvec : n), ACT_THREADS, 0, st>>>(
        (__nv_bfloat16 *)x, (const __nv_bfloat16 *)y, n, nvec);
    return cudaGetLastError();
}
