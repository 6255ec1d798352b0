/* embed.cu: row gathers: the token-embedding lookup (bf16 table -> bf16 activations) and the
 * gather of selected activation rows into float32 (the final hidden rows that the lm_head
 * product reads). One block per output row; 16-byte accesses when the row length and the
 * pointers allow it, since these are pure copies whose speed is bytes moved. */
#include "ops_cuda.h"

#include <cuda_bf16.h>

#define GATHER_THREADS 128

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* An out-of-range id fills its row with NaN (so nothing downstream looks valid) and flags it. */
static __global__ void embed_kernel(__nv_bfloat16 *__restrict__ x,
                                    const __nv_bfloat16 *__restrict__ table,
                                    const int32_t *__restrict__ ids, int D, int V, int vec,
                                    unsigned *err) {
    int t = blockIdx.x, id = ids[t];
    __nv_bfloat16 *dst = x + (size_t)t * D;
    if (id < 0 || id >= V) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) dst[i] = __float2bfloat16(__int_as_float(0x7fc00000));
        if (threadIdx.x == 0) atomicOr(err, HP_CUDA_ERR_TOKEN_ID);
        return;
    }
    const __nv_bfloat16 *src = table + (size_t)id * D;
    if (vec) {
        const uint4 *s = (const uint4 *)src;
        uint4 *d = (uint4 *)dst;
        for (int i = threadIdx.x; i < D / 8; i += blockDim.x) d[i] = s[i];
    } else {
        for (int i = threadIdx.x; i < D; i += blockDim.x) dst[i] = src[i];
    }
}

static __global__ void gather_rows_f32_kernel(float *__restrict__ out,
                                              const __nv_bfloat16 *__restrict__ x,
                                              const int32_t *__restrict__ rows, int D, int vec) {
    int i = blockIdx.x;
    const __nv_bfloat16 *src = x + (size_t)rows[i] * D;
    float *dst = out + (size_t)i * D;
    if (vec) {
        const uint4 *s = (const uint4 *)src;
        float4 *d = (float4 *)dst;
        for (int c = threadIdx.x; c < D / 8; c += blockDim.x) {
            uint4 u = s[c];
            const __nv_bfloat162 *b = (const __nv_bfloat162 *)&u;
            float2 f0 = __bfloat1622float2(b[0]), f1 = __bfloat1622float2(b[1]);
            float2 f2 = __bfloat1622float2(b[2]), f3 = __bfloat1622float2(b[3]);
            d[2 * c] = make_float4(f0.x, f0.y, f1.x, f1.y);
            d[2 * c + 1] = make_float4(f2.x, f2.y, f3.x, f3.y);
        }
    } else {
        for (int c = threadIdx.x; c < D; c += blockDim.x) dst[c] = __bfloat162float(src[c]);
    }
}

extern "C" cudaError_t hp_cuda_embed(hp_bf16 *x, const hp_bf16 *table, const int32_t *ids, int T,
                                     int D, int V, unsigned *err, cudaStream_t st) {
    if (T < 0 || D <= 0 || V <= 0) return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    int vec = D % 8 == 0 && aligned16(x) && aligned16(table);
    embed_kernel<<<T, GATHER_THREADS, 0, st>>>((__nv_bfloat16 *)x, (const __nv_bfloat16 *)table,
                                               ids, D, V, vec, err);
    return cudaGetLastError();
}

extern "C" cudaError_t hp_cuda_gather_rows_f32(float *out, const hp_bf16 *x, const int32_t *rows,
                                               int n, int D, cudaStream_t st) {
    if (n < 0 || D <= 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    int vec = D % 8 == 0 && aligned16(x) && aligned16(out);
    gather_rows_f32_kernel<<<n, GATHER_THREADS, 0, st>>>(out, (const __nv_bfloat16 *)x, rows, D,
                                                         vec);
    return cudaGetLastError();
}
