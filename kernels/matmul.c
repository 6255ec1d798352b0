/* matmul.c: the dense products of the CPU backend, y = x·W^T with W stored row-major [N,K] as
 * in the checkpoints (nn.Linear layout), through OpenBLAS. */
#include "ops_cpu.h"

#include <cblas.h>

void hp_cpu_matmul(float *y, const float *x, const float *W, int T, int N, int K, float beta) {
    if (T == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W, K, x, 1, beta, y, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K, W, K, beta, y, N);
}
