/* emu_cusolver.cc (cuda_emu): cuSOLVER's dense QR calls on the host, through LAPACK's dgeqrf and
 * dormqr (LAPACKE, column-major), so the results are LAPACK's reflectors, which cuSOLVER's
 * share in layout (tau, reflectors below the diagonal, R on and above it). Matrices must lie in
 * cudaMalloc memory; devInfo (device memory) receives LAPACK's info. The workspace the caller
 * passes is checked for size and then not used: LAPACKE allocates its own. */
#include <stdio.h>

#include <lapacke.h>

#include "cusolverDn.h"

struct hp_emu_cusolver {
    cudaStream_t st;
};

namespace {

int dev(const char *fn, const char *what, const void *p, size_t bytes) {
    if (!bytes || hp_emu_is_device_range(p, bytes)) return 1;
    fprintf(stderr, "cuda_emu: %s: %s (%p, %zu bytes) is not inside one cudaMalloc allocation\n", fn,
            what, p, bytes);
    return 0;
}

size_t span(int rows, int cols, int ld) { return rows && cols ? ((size_t)ld * (cols - 1) + rows) * 8 : 0; }

} /* namespace */

extern "C" {

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *h) {
    *h = new hp_emu_cusolver{nullptr};
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t h) {
    delete h;
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t h, cudaStream_t st) {
    h->st = st;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgeqrf_bufferSize(cusolverDnHandle_t h, int m, int n, double *A, int lda,
                                             int *lwork) {
    (void)h;
    (void)A;
    if (m < 0 || n < 0 || lda < (m > 1 ? m : 1)) return CUSOLVER_STATUS_INVALID_VALUE;
    *lwork = n > 0 ? 32 * n : 1; /* what a blocked geqrf would ask: a panel of 32 columns */
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgeqrf(cusolverDnHandle_t h, int m, int n, double *A, int lda, double *tau,
                                  double *work, int lwork, int *devInfo) {
    (void)h;
    if (m < 0 || n < 0 || lda < (m > 1 ? m : 1) || lwork < (n > 0 ? 32 * n : 1))
        return CUSOLVER_STATUS_INVALID_VALUE;
    int mn = m < n ? m : n;
    if (!dev("cusolverDnDgeqrf", "A", A, span(m, n, lda)) || !dev("cusolverDnDgeqrf", "tau", tau, (size_t)mn * 8) ||
        !dev("cusolverDnDgeqrf", "work", work, (size_t)lwork * 8) || !dev("cusolverDnDgeqrf", "devInfo", devInfo, 4))
        return CUSOLVER_STATUS_EXECUTION_FAILED;
    *devInfo = m && n ? (int)LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, A, lda, tau) : 0;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDormqr_bufferSize(cusolverDnHandle_t h, cublasSideMode_t side,
                                             cublasOperation_t trans, int m, int n, int k,
                                             const double *A, int lda, const double *tau,
                                             const double *C, int ldc, int *lwork) {
    (void)h, (void)trans, (void)A, (void)tau, (void)C;
    int nq = side == CUBLAS_SIDE_LEFT ? m : n;
    if (m < 0 || n < 0 || k < 0 || k > nq || lda < (nq > 1 ? nq : 1) || ldc < (m > 1 ? m : 1))
        return CUSOLVER_STATUS_INVALID_VALUE;
    *lwork = 32 * (side == CUBLAS_SIDE_LEFT ? (n > 1 ? n : 1) : (m > 1 ? m : 1));
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDormqr(cusolverDnHandle_t h, cublasSideMode_t side, cublasOperation_t trans,
                                  int m, int n, int k, const double *A, int lda, const double *tau,
                                  double *C, int ldc, double *work, int lwork, int *devInfo) {
    int need = 0;
    cusolverStatus_t s = cusolverDnDormqr_bufferSize(h, side, trans, m, n, k, A, lda, tau, C, ldc, &need);
    if (s != CUSOLVER_STATUS_SUCCESS) return s;
    if (lwork < need || trans == CUBLAS_OP_C) return CUSOLVER_STATUS_INVALID_VALUE;
    int nq = side == CUBLAS_SIDE_LEFT ? m : n;
    if (!dev("cusolverDnDormqr", "A", A, span(nq, k, lda)) || !dev("cusolverDnDormqr", "tau", tau, (size_t)k * 8) ||
        !dev("cusolverDnDormqr", "C", C, span(m, n, ldc)) || !dev("cusolverDnDormqr", "work", work, (size_t)lwork * 8) ||
        !dev("cusolverDnDormqr", "devInfo", devInfo, 4))
        return CUSOLVER_STATUS_EXECUTION_FAILED;
    *devInfo = m && n && k ? (int)LAPACKE_dormqr(LAPACK_COL_MAJOR, side == CUBLAS_SIDE_LEFT ? 'L' : 'R',
                                                 trans == CUBLAS_OP_N ? 'N' : 'T', m, n, k, A, lda, tau, C, ldc)
                           : 0;
    return CUSOLVER_STATUS_SUCCESS;
}

} /* extern "C" */
