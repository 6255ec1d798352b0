/* readout.cu: the paper's head edit (scale head h's slice of z by alpha[h]) and the first half
 * of the per-head readout. The readout is linear in z, so, as on the CPU, the weighted token
 * sum per sequence is taken first (zs [B, H·Dh], fp32) and only that small matrix meets W_O,
 * in one cuBLAS strided-batched GEMM per head slice (host/model/backend_cuda.c); no T×D tensor per
 * head is ever formed. zs is handed over as bf16 hi + lo so the GEMM runs on tensor cores while
 * zs keeps ~16 significant bits.
 *
 * zsum: one thread per pair of columns and a 32-token chunk of rows per block row, so the grid
 * has (H·Dh/256)·(T/32) blocks, enough for any T; consecutive tokens of one sequence are summed
 * in registers and flushed with one atomicAdd per (run, column). fp32 atomics make the
 * summation order (and so the last bit) vary between runs; the hi/lo split keeps 16 bits, far
 * above that. */
#include "ops_cuda.h"

#include <cuda_bf16.h>

#define SCALE_THREADS 256
#define SCALE_MAX_BLOCKS 4096
#define ZSUM_THREADS 128
#define ZSUM_ROWS 32

/* Dh is even (RoPE pairs), so a bf16 pair never straddles two heads. */
static __global__ void head_scale_kernel(__nv_bfloat162 *z, const float *__restrict__ alpha,
                                         size_t npairs, int H, int half) {
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < npairs;
         k += (size_t)gridDim.x * blockDim.x) {
        float a = alpha[(k / half) % H];
        float2 f = __bfloat1622float2(z[k]);
        z[k] = __floats2bfloat162_rn(f.x * a, f.y * a);
    }
}

static __global__ void __launch_bounds__(ZSUM_THREADS)
zsum_kernel(float *zs, const __nv_bfloat162 *__restrict__ z, const float *__restrict__ w,
            const int32_t *__restrict__ seq, int T, int B, int hpairs, unsigned *err) {
    int c = blockIdx.x * blockDim.x + threadIdx.x; /* column pair */
    int t0 = blockIdx.y * ZSUM_ROWS, t1 = min(t0 + ZSUM_ROWS, T);
    if (c >= hpairs) return;
    int cur = -1;
    float ax = 0.0f, ay = 0.0f;
    for (int t = t0; t < t1; t++) {
        float wt = w[t];
        if (wt == 0.0f) continue; /* as on the CPU: a zero weight skips the row, NaN or not */
        int b = seq[t];
        if (b < 0 || b >= B) {
            if (c == 0) atomicOr(err, HP_CUDA_ERR_CAP_ROW);
            continue;
        }
        if (b != cur) {
            if (cur >= 0) {
                atomicAdd(zs + (size_t)cur * 2 * hpairs + 2 * c, ax);
                atomicAdd(zs + (size_t)cur * 2 * hpairs + 2 * c + 1, ay);
            }
            cur = b;
            ax = ay = 0.0f;
        }
        float2 f = __bfloat1622float2(z[(size_t)t * hpairs + c]);
        ax += wt * f.x;
        ay += wt * f.y;
    }
    if (cur >= 0) {
        atomicAdd(zs + (size_t)cur * 2 * hpairs + 2 * c, ax);
        atomicAdd(zs + (size_t)cur * 2 * hpairs + 2 * c + 1, ay);
    }
}

extern "C" cudaError_t hp_cuda_head_scale(hp_bf16 *z, const float *alpha, int T, int H, int Dh,
                                          cudaStream_t st) {
    if (T < 0 || H <= 0 || Dh <= 0 || Dh % 2) return cudaErrorInvalidValue;
    size_t npairs = (size_t)T * H * Dh / 2;
    if (npairs == 0) return cudaSuccess;
    size_t nb = (npairs + SCALE_THREADS - 1) / SCALE_THREADS;
    head_scale_kernel<<<(unsigned)(nb < SCALE_MAX_BLOCKS ? nb : SCALE_MAX_BLOCKS), SCALE_THREADS, 0,
                        st>>>((__nv_bfloat162 *)z, alpha, npairs, H, Dh / 2);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_readout_zsum(hp_bf16 *hi, hp_bf16 *lo, float *zsum, const hp_bf16 *z,
                                            const float *w, const int32_t *seq, int T, int B, int HD,
                                            unsigned *err, cudaStream_t st) {
    if (T < 0 || B <= 0 || HD <= 0 || HD % 2) return cudaErrorInvalidValue;
    size_t nz = (size_t)B * HD;
    cudaError_t rc = cudaMemsetAsync(zsum, 0, nz * sizeof(float), st);
    if (rc != cudaSuccess) return rc;
    if (T > 0) {
        int hpairs = HD / 2;
        dim3 grid((hpairs + ZSUM_THREADS - 1) / ZSUM_THREADS, (T + ZSUM_ROWS - 1) / ZSUM_ROWS);
        if (grid.y > 65535) return cudaErrorInvalidValue;
        zsum_kernel<<<grid, ZSUM_THREADS, 0, st>>>(zsum, (const __nv_bfloat162 *)z, w, seq, T, B,
                                                   hpairs, err);
        if ((rc = cudaGetLastError()) != cudaSuccess) return rc;
    }
    return hp_cuda_f32_split_bf16(hi, lo, zsum, nz, st);
}
