/* bias.c: the bias of a biased nn.Linear (CPU): x[t, :] += b for every row. Kept apart from the
 * matmul so the decoder's unbiased products stay one BLAS call. */
#include "ops_cpu.h"

void hp_cpu_add_bias(float *x, const float *b, int T, int N) {
#pragma omp parallel for schedule(static) if ((size_t)T * N > 65536)
    for (int t = 0; t < T; t++) {
        float *r = x + (size_t)t * N;
        for (int i = 0; i < N; i++) r[i] += b[i];
    }
}
