/* vision.cu: the CLIP vision tower's own ops on bf16 activations (fp32 math, one bf16 rounding
 * per output), the GPU twins of gelu.c, bias.c, im2col.c and the softmax inside
 * attention_full.c (LayerNorm is in norm.cu). The attention's two products (Q·K^T and P·V) are cuBLAS strided-batched
 * GEMMs issued by the backend (host/model/backend_cuda.c); the row softmax between them is here.
 *
 *   gelu        exact erf form (erff) / quick_gelu x / (1 + e^(−1.702x)), in place, grid-stride.
 *   add_bias    x[t, n] += b[n], grid-stride over the [T, N] activation.
 *   softmax     one warp per row of fp32 scores (already scaled by 1/sqrt(Dh) in the GEMM):
 *               max, Σ exp(s − max), then bf16 p = exp(s − max) / Σ into the P·V operand.
 *   im2col      float32 images [n][C][S][S] to bf16 patch rows [n·(S/p)², C·p·p] in the conv
 *               weight's (c, ky, kx) order; one thread per output element, consecutive threads
 *               along kx/ky so that the image reads stay within a cache line. */
#include "ops_cuda.h"

#include <cuda_bf16.h>

#define VIS_THREADS 256
#define VIS_MAX_BLOCKS 4096

static unsigned grid_for(size_t n) {
    size_t b = (n + VIS_THREADS - 1) / VIS_THREADS;
    return (unsigned)(b < VIS_MAX_BLOCKS ? (b ? b : 1) : VIS_MAX_BLOCKS);
}

static __global__ void gelu_kernel(__nv_bfloat16 *x, size_t n, int quick) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = __bfloat162float(x[i]);
        v = quick ? v / (1.0f + expf(-1.702f * v)) : 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        x[i] = __float2bfloat16_rn(v);
    }
}

static __global__ void add_bias_kernel(__nv_bfloat16 *x, const __nv_bfloat16 *__restrict__ b,
                                       size_t n, int N) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = __float2bfloat16_rn(__bfloat162float(x[i]) + __bfloat162float(b[i % (size_t)N]));
}

static __global__ void softmax_rows_kernel(__nv_bfloat16 *p, const float *__restrict__ s,
                                           size_t rows, int N) {
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float *sr = s + row * N;
    __nv_bfloat16 *pr = p + row * N;
    float mx = -INFINITY;
    for (int j = lane; j < N; j += 32) mx = fmaxf(mx, sr[j]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.0f;
    for (int j = lane; j < N; j += 32) sum += expf(sr[j] - mx);
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = 1.0f / sum;
    for (int j = lane; j < N; j += 32) pr[j] = __float2bfloat16_rn(expf(sr[j] - mx) * inv);
}

static __global__ void im2col_kernel(__nv_bfloat16 *cols, const float *__restrict__ img, size_t n,
                                     int C, int S, int p) {
    int g = S / p;
    size_t K = (size_t)C * p * p, P = (size_t)g * g, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t row = i / K, col = i % K, img_i = row / P, patch = row % P;
        int c = (int)(col / ((size_t)p * p)), ky = (int)(col / p % p), kx = (int)(col % p);
        int gy = (int)(patch / g), gx = (int)(patch % g);
        size_t src = ((img_i * C + c) * S + (size_t)gy * p + ky) * S + (size_t)gx * p + kx;
        cols[i] = __float2bfloat16_rn(img[src]);
    }
}

extern "C" cudaError_t hp_cuda_gelu(hp_bf16 *x, size_t n, int quick, cudaStream_t st) {
    if (n == 0) return cudaSuccess;
    gelu_kernel<<<grid_for(n), VIS_THREADS, 0, st>>>((__nv_bfloat16 *)x, n, quick);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_add_bias(hp_bf16 *x, const hp_bf16 *b, int T, int N,
                                        cudaStream_t st) {
    if (T < 0 || N <= 0) return cudaErrorInvalidValue;
    size_t n = (size_t)T * N;
    if (n == 0) return cudaSuccess;
    add_bias_kernel<<<grid_for(n), VIS_THREADS, 0, st>>>((__nv_bfloat16 *)x,
                                                         (const __nv_bfloat16 *)b, n, N);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_softmax_rows(hp_bf16 *p, const float *s, size_t rows, int N,
                                            cudaStream_t st) {
    if (N <= 0) return cudaErrorInvalidValue;
    if (rows == 0) return cudaSuccess;
    unsigned warps = VIS_THREADS / 32;
    size_t blocks = (rows + warps - 1) / warps;
    if (blocks > 0x7fffffffu) return cudaErrorInvalidValue;
    softmax_rows_kernel<<<(unsigned)blocks, VIS_THREADS, 0, st>>>((__nv_bfloat16 *)p, s, rows, N);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_im2col(hp_bf16 *cols, const float *img, int n_img, int C, int S,
                                      int p, cudaStream_t st) {
    if (n_img < 0 || C <= 0 || p <= 0 || S < p) return cudaErrorInvalidValue;
    size_t g = (size_t)(S / p), n = (size_t)n_img * g * g * C * p * p;
    if (n == 0) return cudaSuccess;
    im2col_kernel<<<grid_for(n), VIS_THREADS, 0, st>>>((__nv_bfloat16 *)cols, img, n, C, S, p);
    return cudaGetLastError();
}
