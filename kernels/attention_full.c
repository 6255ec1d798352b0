/* attention_full.c: non-causal multi-head self-attention over B independent sequences of N
 * positions each (the CLIP vision encoder: every patch sees every patch, no mask, no RoPE).
 * Per sequence and head, S = Q_h K_h^T / sqrt(Dh) and Z_h = softmax(S) V_h go through BLAS with
 * the row stride H*Dh, so no head is copied out; the softmax is row-wise in float32 with the max
 * subtracted and the sum accumulated in double. */
#include "ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

int hp_cpu_attention_full(float *z, const float *q, const float *k, const float *v, int B, int N,
                          int H, int Dh) {
    size_t HD = (size_t)H * Dh;
    float *S = malloc(sizeof(float) * (size_t)N * N);
    if (!S) return -1;
    float scale = (float)(1.0 / sqrt((double)Dh));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = (size_t)b * N * HD + (size_t)h * Dh;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, Dh, scale, q + off, (int)HD,
                        k + off, (int)HD, 0.0f, S, N);
#pragma omp parallel for schedule(static) if ((size_t)N * N > 65536)
            for (int i = 0; i < N; i++) {
                float *r = S + (size_t)i * N, mx = r[0];
                for (int j = 1; j < N; j++)
                    if (r[j] > mx) mx = r[j];
                double sum = 0;
                for (int j = 0; j < N; j++) sum += (r[j] = expf(r[j] - mx));
                float inv = (float)(1.0 / sum);
                for (int j = 0; j < N; j++) r[j] *= inv;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Dh, N, 1.0f, S, N, v + off,
                        (int)HD, 0.0f, z + off, (int)HD);
        }
    free(S);
    return 0;
}
