/* attention_full.c: non-causal multi-head self-attention over B independent sequences of N
 * positions each (the CLIP vision encoder: every patch sees every patch, no mask, no RoPE).
 * Per sequence and head, S = Q_h K_h^T / sqrt(Dh) and Z_h = softmax(S) V_h go through BLAS with
 * the row stride H*Dh, so no head is copied out; the softmax is row-wise in float32 with the max
 * subtracted and the sum accumulated in double. The (sequence, head) pairs run in parallel, one
 * N×N score buffer per thread, each product single-threaded (OpenBLAS's OpenMP build does not
 * split inside a parallel region): a CLIP-L product is only 577×577×64, too small to spread over
 * many cores, while B*H = 80 pairs for 5 tiles are plenty. On 2 cores both orders measured the
 * same (0.41-0.49 s for 5 tiles); the wider machines are where this one is meant to scale. */
#include "ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

static void one_head(float *z, const float *q, const float *k, const float *v, float *S, int N,
                     int Dh, size_t HD, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, Dh, scale, q, (int)HD, k, (int)HD,
                0.0f, S, N);
    for (int i = 0; i < N; i++) {
        float *r = S + (size_t)i * N, mx = r[0];
        for (int j = 1; j < N; j++)
            if (r[j] > mx) mx = r[j];
        double sum = 0;
        for (int j = 0; j < N; j++) sum += (r[j] = expf(r[j] - mx));
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < N; j++) r[j] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Dh, N, 1.0f, S, N, v, (int)HD, 0.0f,
                z, (int)HD);
}

int hp_cpu_attention_full(float *z, const float *q, const float *k, const float *v, int B, int N,
                          int H, int Dh) {
    size_t HD = (size_t)H * Dh, NN = (size_t)N * N;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > B * H) nt = B * H;
    float *S = malloc(sizeof(float) * NN * (size_t)(nt > 0 ? nt : 1));
    if (!S) return -1;
    float scale = (float)(1.0 / sqrt((double)Dh));
#pragma omp parallel for num_threads(nt) schedule(dynamic) if (nt > 1)
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = (size_t)(bh / H) * N * HD + (size_t)(bh % H) * Dh;
        one_head(z + off, q + off, k + off, v + off, S + NN * (size_t)omp_get_thread_num(), N, Dh,
                 HD, scale);
    }
    free(S);
    return 0;
}
