/* emu_cublas.cc (cuda_emu): the cuBLAS calls headpursuit makes, as plain reference loops on the
 * host. fp32 and bf16 products accumulate in fp32 (eight interleaved partial sums, a fixed
 * order), fp64 ones in fp64; beta = 0 never reads C (as cuBLAS); bf16 results round to nearest
 * even. Operands must lie in cudaMalloc memory, as on a GPU, where a host pointer faults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cublas_v2.h"

struct hp_emu_cublas {
    cudaStream_t st;
    cublasMath_t math;
};

namespace {

float bf16_to_f(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;
    uint32_t hi = u >> 16, rem = u << 16;
    if (rem > 0x80000000u || (rem == 0x80000000u && (hi & 1u))) hi++;
    return (uint16_t)hi;
}

size_t tsize(cudaDataType t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_64F ? 8 : 2; }

float load(const void *p, cudaDataType t, size_t i) {
    return t == CUDA_R_32F ? static_cast<const float *>(p)[i] : bf16_to_f(static_cast<const uint16_t *>(p)[i]);
}

void store(void *p, cudaDataType t, size_t i, float v) {
    if (t == CUDA_R_32F)
        static_cast<float *>(p)[i] = v;
    else
        static_cast<uint16_t *>(p)[i] = f_to_bf16(v);
}

/* Elements spanned by a column-major rows×cols matrix with leading dimension ld. */
size_t span(int rows, int cols, int ld) { return rows && cols ? (size_t)ld * (cols - 1) + rows : 0; }

int on_device(const char *fn, const char *what, const void *p, size_t elems, size_t esz) {
    if (!elems || hp_emu_is_device_range(p, elems * esz)) return 1;
    fprintf(stderr, "cuda_emu: %s: %s (%p, %zu bytes) is not inside one cudaMalloc allocation\n", fn,
            what, p, elems * esz);
    return 0;
}

float dot(const float *a, const float *b, int k) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int l = 0;
    for (; l + 8 <= k; l += 8)
        for (int u = 0; u < 8; u++) s[u] += a[l + u] * b[l + u];
    for (; l < k; l++) s[l & 7] += a[l] * b[l];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

cublasStatus_t gemm(const char *fn, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    float alpha, const void *A, cudaDataType At, int lda, long long sA, const void *B,
                    cudaDataType Bt, int ldb, long long sB, float beta, void *C, cudaDataType Ct,
                    int ldc, long long sC, int batch) {
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ta > CUBLAS_OP_T || tb > CUBLAS_OP_T ||
        lda < (ta == CUBLAS_OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) ||
        ldb < (tb == CUBLAS_OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (At != Bt || (At != CUDA_R_32F && At != CUDA_R_16BF) || (Ct != CUDA_R_32F && Ct != CUDA_R_16BF))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    size_t ea = ta == CUBLAS_OP_N ? span(m, k, lda) : span(k, m, lda);
    size_t eb = tb == CUBLAS_OP_N ? span(k, n, ldb) : span(n, k, ldb);
    size_t ec = span(m, n, ldc);
    std::vector<float> a((size_t)m * k), b((size_t)n * k);
    for (int bi = 0; bi < batch; bi++) {
        const char *Ab = static_cast<const char *>(A) + (size_t)bi * sA * tsize(At);
        const char *Bb = static_cast<const char *>(B) + (size_t)bi * sB * tsize(Bt);
        char *Cb = static_cast<char *>(C) + (size_t)bi * sC * tsize(Ct);
        if (!on_device(fn, "A", Ab, ea, tsize(At)) || !on_device(fn, "B", Bb, eb, tsize(Bt)) ||
            !on_device(fn, "C", Cb, ec, tsize(Ct)))
            return CUBLAS_STATUS_EXECUTION_FAILED;
        for (int i = 0; i < m; i++) /* a[i][l] = op(A)(i, l) */
            for (int l = 0; l < k; l++)
                a[(size_t)i * k + l] = load(Ab, At, ta == CUBLAS_OP_N ? i + (size_t)l * lda : l + (size_t)i * lda);
        for (int j = 0; j < n; j++) /* b[j][l] = op(B)(l, j) */
            for (int l = 0; l < k; l++)
                b[(size_t)j * k + l] = load(Bb, Bt, tb == CUBLAS_OP_N ? l + (size_t)j * ldb : j + (size_t)l * ldb);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                size_t ci = i + (size_t)j * ldc;
                float v = alpha * dot(&a[(size_t)i * k], &b[(size_t)j * k], k);
                if (beta != 0.0f) v += beta * load(Cb, Ct, ci);
                store(Cb, Ct, ci, v);
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

} /* namespace */

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new hp_emu_cublas{nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t st) {
    h->st = st;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    (void)h;
    return bytes && !hp_emu_is_device_range(ws, bytes) ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType At, int lda,
                            const void *B, cudaDataType Bt, int ldb, const void *beta, void *C,
                            cudaDataType Ct, int ldc, cublasComputeType_t ct, cublasGemmAlgo_t algo) {
    (void)h;
    (void)algo;
    if (ct != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm("cublasGemmEx", ta, tb, m, n, k, *(const float *)alpha, A, At, lda, 0, B, Bt, ldb,
                0, *(const float *)beta, C, Ct, ldc, 0, 1);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                          int m, int n, int k, const void *alpha, const void *A,
                                          cudaDataType At, int lda, long long sA, const void *B,
                                          cudaDataType Bt, int ldb, long long sB, const void *beta,
                                          void *C, cudaDataType Ct, int ldc, long long sC, int batch,
                                          cublasComputeType_t ct, cublasGemmAlgo_t algo) {
    (void)h;
    (void)algo;
    if (ct != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm("cublasGemmStridedBatchedEx", ta, tb, m, n, k, *(const float *)alpha, A, At, lda, sA,
                B, Bt, ldb, sB, *(const float *)beta, C, Ct, ldc, sC, batch);
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc) {
    (void)h;
    return gemm("cublasSgemm", ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, 0, B, CUDA_R_32F, ldb, 0,
                *beta, C, CUDA_R_32F, ldc, 0, 1);
}

cublasStatus_t cublasDgemvStridedBatched(cublasHandle_t h, cublasOperation_t t, int m, int n,
                                         const double *alpha, const double *A, int lda, long long sA,
                                         const double *x, int incx, long long sx, const double *beta,
                                         double *y, int incy, long long sy, int batch) {
    (void)h;
    if (m < 0 || n < 0 || batch < 0 || lda < (m > 1 ? m : 1) || incx == 0 || incy == 0 || t > CUBLAS_OP_T)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (incx < 0 || incy < 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    int lx = t == CUBLAS_OP_N ? n : m, ly = t == CUBLAS_OP_N ? m : n;
    if (ly == 0) return CUBLAS_STATUS_SUCCESS;
    for (int b = 0; b < batch; b++) {
        const double *Ab = A + b * sA, *xb = x + b * sx;
        double *yb = y + b * sy;
        if (!on_device("cublasDgemvStridedBatched", "A", Ab, span(m, n, lda), 8) ||
            !on_device("cublasDgemvStridedBatched", "x", xb, lx ? (size_t)(lx - 1) * incx + 1 : 0, 8) ||
            !on_device("cublasDgemvStridedBatched", "y", yb, (size_t)(ly - 1) * incy + 1, 8))
            return CUBLAS_STATUS_EXECUTION_FAILED;
        for (int i = 0; i < ly; i++) {
            double s = 0;
            for (int l = 0; l < lx; l++)
                s += (t == CUBLAS_OP_N ? Ab[i + (size_t)l * lda] : Ab[l + (size_t)i * lda]) * xb[(size_t)l * incx];
            double v = *alpha * s;
            if (*beta != 0.0) v += *beta * yb[(size_t)i * incy];
            yb[(size_t)i * incy] = v;
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* op(A)·X = alpha·B (left) or X·op(A) = alpha·B (right), A triangular, X overwrites B. */
cublasStatus_t cublasDtrsm(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo,
                           cublasOperation_t t, cublasDiagType_t diag, int m, int n,
                           const double *alpha, const double *A, int lda, double *B, int ldb) {
    (void)h;
    int na = side == CUBLAS_SIDE_LEFT ? m : n;
    if (m < 0 || n < 0 || lda < (na > 1 ? na : 1) || ldb < (m > 1 ? m : 1) || t > CUBLAS_OP_T)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    if (!on_device("cublasDtrsm", "A", A, span(na, na, lda), 8) || !on_device("cublasDtrsm", "B", B, span(m, n, ldb), 8))
        return CUBLAS_STATUS_EXECUTION_FAILED;
    /* effective upper/lower of op(A) */
    int upper = (uplo == CUBLAS_FILL_MODE_UPPER) != (t != CUBLAS_OP_N);
    auto a = [&](int i, int j) { /* op(A)(i, j) */
        if (i == j && diag == CUBLAS_DIAG_UNIT) return 1.0;
        return t == CUBLAS_OP_N ? A[i + (size_t)j * lda] : A[j + (size_t)i * lda];
    };
    if (side == CUBLAS_SIDE_LEFT) {
        for (int c = 0; c < n; c++) {
            double *x = B + (size_t)c * ldb;
            for (int i = 0; i < m; i++) x[i] *= *alpha;
            if (upper)
                for (int i = m - 1; i >= 0; i--) {
                    double s = x[i];
                    for (int j = i + 1; j < m; j++) s -= a(i, j) * x[j];
                    x[i] = s / a(i, i);
                }
            else
                for (int i = 0; i < m; i++) {
                    double s = x[i];
                    for (int j = 0; j < i; j++) s -= a(i, j) * x[j];
                    x[i] = s / a(i, i);
                }
        }
    } else { /* row r of X: x·op(A) = b, i.e. op(A)^T x^T = b^T */
        for (int r = 0; r < m; r++) {
            for (int j = 0; j < n; j++) B[r + (size_t)j * ldb] *= *alpha;
            if (upper)
                for (int j = 0; j < n; j++) {
                    double s = B[r + (size_t)j * ldb];
                    for (int i = 0; i < j; i++) s -= B[r + (size_t)i * ldb] * a(i, j);
                    B[r + (size_t)j * ldb] = s / a(j, j);
                }
            else
                for (int j = n - 1; j >= 0; j--) {
                    double s = B[r + (size_t)j * ldb];
                    for (int i = j + 1; i < n; i++) s -= B[r + (size_t)i * ldb] * a(i, j);
                    B[r + (size_t)j * ldb] = s / a(j, j);
                }
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

} /* extern "C" */
