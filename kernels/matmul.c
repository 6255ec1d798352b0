/* matmul.c: the dense float32 products of the CPU backend, y = x·W^T with W stored row-major
 * [N,K] as in the checkpoints (nn.Linear layout), through single-threaded OpenBLAS calls on tiles
 * of W's rows that the OpenMP threads take dynamically (OpenBLAS's own threading splits the work
 * statically, so one descheduled thread stalled the whole product on a shared machine). */
#include "ops_cpu.h"

#include <cblas.h>
#include <omp.h>

void hp_cpu_matmul(float *y, const float *x, const float *W, int T, int N, int K, float beta) {
    int nth = omp_get_max_threads();
    /* Tiles of 16..128 rows (sgemv: about 64 KiB of weights), about 8 per thread. */
    int tr = N / (8 * nth);
    if (T == 1 && tr > 16384 / (K ? K : 1)) tr = 16384 / (K ? K : 1);
    tr = tr < 16 ? 16 : tr > 128 ? 128 : tr & ~15;
    int nt = (N + tr - 1) / tr;
#pragma omp parallel for schedule(dynamic, 1) if (nt > 1 && (size_t)T * N * K > 65536)
    for (int i = 0; i < nt; i++) {
        int n0 = i * tr, nn = N - n0 < tr ? N - n0 : tr;
        const float *Wt = W + (size_t)n0 * K;
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, nn, K, 1.0f, Wt, K, x, 1, beta, y + n0, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nn, K, 1.0f, x, K, Wt, K, beta,
                        y + n0, N);
    }
}
