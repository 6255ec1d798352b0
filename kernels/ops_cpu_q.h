/* ops_cpu_q.h: CPU products with weight matrices kept in their stored GGUF block type
 * (kernels/matmul_q.c). A matrix [N, K] of type dt is N rows of hp_dtype_nbytes(dt, K) bytes,
 * exactly as in the file. Activations stay float32 in and out. */
#ifndef HP_OPS_CPU_Q_H
#define HP_OPS_CPU_Q_H

#include "common.h"

/* Whether matrices of type dt have a product kernel here (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K);
 * other types are dequantised to float32 at load. */
int hp_cpu_q_supported(hp_dtype dt);
/* Which kernels run: "avx2" (AVX2 + FMA + F16C, detected at run time) or "scalar". */
const char *hp_cpu_q_isa(void);
/* Force the scalar kernels (tests compare them with the SIMD ones); returns the previous value. */
int hp_cpu_q_force_scalar(int on);

/* Activations quantised per block of 32 values to 16 bits: x ≈ d·q, s = d·Σq (for the weights'
 * offsets). 16 rather than 8 bits (llama.cpp's Q8 activations) keeps the products within ~1e-5
 * of float32, so that greedy answers do not flip on near-ties; the weights' bytes dominate the
 * memory traffic either way. */
typedef struct hp_qxblk {
    float d, s;
    int16_t q[32];
} hp_qxblk;
/* K values (a multiple of 32) of x into K/32 blocks: d = max|x|/32767, q = round(x/d). */
void hp_cpu_quantize_qx(const float *x, hp_qxblk *b, int K);
/* One row of W (K values stored as dt) · the quantised activation row xb. */
float hp_cpu_dot_q(hp_dtype dt, const void *wrow, const hp_qxblk *xb, int K);

/* y[T,N] = x[T,K] · W[N,K]^T with W stored as dt. T < HP_Q_GEMM_MIN_T: x quantised per block to
 * 16 bits and integer dot products per block (error bound in tests/tolerances.h); otherwise W is
 * dequantised tile by tile and multiplied in float32 (the values of the float32 path). Rows are
 * split into small chunks taken dynamically by the threads, so a descheduled thread holds back
 * at most one chunk. */
#define HP_Q_GEMM_MIN_T 16
/* Returns -1 when out of memory for the scratch buffers. */
int hp_cpu_matmul_q(float *y, const float *x, const void *W, hp_dtype dt, int T, int N, int K);
/* x[t,:] = table[ids[t],:] with the table [V, D] stored as dt; -1 if an id is out of range. */
int hp_cpu_embed_q(float *x, const void *table, hp_dtype dt, const int32_t *ids, int T, int D,
                   int V);

#endif
