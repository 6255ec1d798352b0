/* backend_cuda.c: the CUDA backend: device memory from cudaMalloc, weights and activations in
 * bf16 (F32 and I32 buffers as they are), the ops from kernels/ *.cu, dense products through
 * cuBLAS with fp32 accumulation. Everything is enqueued on one stream per backend and is
 * asynchronous; download() and sync() wait.
 *
 * Errors: every CUDA and cuBLAS call goes through CU()/CB(), which record the statement, file,
 * line and the library's message as the backend's pending error and make the call return -1.
 * Ops have no hp_err argument, so the pending error is handed over by the next call that has
 * one (sync, upload, download, zero, copy, alloc), which fails with it: no call after a failure
 * looks successful. Kernels flag bad indices in a device word that sync() reads.
 *
 * Products:
 *   matmul      y[T,N] = x[T,K]·W[N,K]^T: in column-major terms y^T = W·x^T, so one
 *               cublasGemmEx(OP_T, OP_N, m=N, n=T, k=K) on the row-major buffers as they are;
 *               bf16 in, fp32 accumulation, bf16 out.
 *   matmul_f32  x is float32 and W bf16; cuBLAS takes no mixed A/B types, so x is split into
 *               bf16 hi + lo (x - hi) and y = W·hi + W·lo, two GEMMs with fp32 output (beta 1
 *               on the second). x keeps ~16 significant bits (relative error <= 2^-17) at
 *               twice the cost of one bf16 GEMM, which for the lm_head is a few % of a decode
 *               step; converting W to fp32 instead would need V×D×4 bytes more memory.
 *   head_readout zs (per-sequence weighted token sums, fp32) split the same way, then one
 *               strided-batched GEMM per half over the H heads: out[b,h,:] += W_O[:, h]·zs[b,h].
 * This file compiles to nothing without HP_HAVE_CUDA (backend_cpu.c then supplies a
 * hp_backend_cuda_create that reports the missing backend). */
#ifdef HP_HAVE_CUDA

#include "backend.h"
#include "ops_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define STAGE_ELEMS ((size_t)4 << 20)    /* upload/download staging chunk: 16 MiB of float */
#define BLAS_WORKSPACE ((size_t)32 << 20) /* cuBLAS's recommended workspace on Hopper */
#define MIB (1024.0 * 1024.0)

typedef struct cuda_impl {
    int device, sm_count;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;       /* BLAS_WORKSPACE bytes */
    void *scratch;       /* grown on demand: staging, hi/lo splits, attention partials */
    size_t scratch_bytes;
    unsigned *dflags;    /* device error word (HP_CUDA_ERR_* bits) */
    unsigned *hflags;    /* pinned host copy read by sync() */
    hp_attn_variant attn;
    char err[1024];      /* pending error, empty if none */
} cuda_impl;

static int failf(cuda_impl *ci, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(cuda_impl *ci, const char *fmt, ...) {
    if (!ci->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ci->err, sizeof ci->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define CU(call)                                                                                  \
    do {                                                                                          \
        cudaError_t rc_ = (call);                                                                 \
        if (rc_ != cudaSuccess)                                                                   \
            return failf(ci, "cuda: %s:%d: %s: %s", __FILE__, __LINE__, #call,                    \
                         cudaGetErrorString(rc_));                                                \
    } while (0)

#define CB(call)                                                                                  \
    do {                                                                                          \
        cublasStatus_t rc_ = (call);                                                              \
        if (rc_ != CUBLAS_STATUS_SUCCESS)                                                         \
            return failf(ci, "cuda: %s:%d: %s: %s", __FILE__, __LINE__, #call,                    \
                         cublasGetStatusString(rc_));                                             \
    } while (0)

/* Hands the pending error to e (and clears it); -1 if there was one. */
static int take_pending(cuda_impl *ci, hp_err *e) {
    if (!ci->err[0]) return 0;
    hp_errf(e, "%s", ci->err);
    ci->err[0] = 0;
    return -1;
}

static size_t elem_bytes(hp_mem m) { return m == HP_MEM_WEIGHT || m == HP_MEM_ACT ? 2 : 4; }

/* Makes ci->scratch at least `bytes`. Work already queued may still read the old buffer, so
 * the stream drains before it is freed; growth is geometric so this happens a few times. */
static int scratch_reserve(cuda_impl *ci, size_t bytes) {
    if (bytes <= ci->scratch_bytes) return 0;
    size_t want = ci->scratch_bytes + ci->scratch_bytes / 2;
    if (want < bytes) want = bytes;
    want = (want + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    CU(cudaStreamSynchronize(ci->stream));
    if (ci->scratch) CU(cudaFree(ci->scratch));
    ci->scratch = NULL;
    ci->scratch_bytes = 0;
    cudaError_t rc = cudaMalloc(&ci->scratch, want);
    if (rc != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky: do not blame later calls */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        ci->scratch = NULL;
        return failf(ci, "cuda: out of device memory for %.1f MiB of scratch (%s; %.1f MiB free of %.1f MiB)",
                     want / MIB, cudaGetErrorString(rc), fr / MIB, tot / MIB);
    }
    ci->scratch_bytes = want;
    return 0;
}

/* ---- memory ------------------------------------------------------------------------------ */

static size_t cuda_free_bytes(hp_backend *be) {
    (void)be;
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return fr;
}

static size_t cuda_elem_size(hp_backend *be, hp_mem m) {
    (void)be;
    return elem_bytes(m);
}

static void *cuda_alloc(hp_backend *be, size_t n, hp_mem m, hp_err *e) {
    cuda_impl *ci = be->impl;
    size_t bytes;
    if (take_pending(ci, e)) return NULL;
    if (!hp_mul_ok(n ? n : 1, elem_bytes(m), &bytes)) {
        hp_errf(e, "cuda: allocation of %zu elements overflows", n);
        return NULL;
    }
    void *p = NULL;
    cudaError_t rc = cudaMalloc(&p, bytes);
    if (rc != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        hp_errf(e, "cuda: out of device memory allocating %.1f MiB (%s; %.1f MiB free of %.1f MiB on device %d)",
                bytes / MIB, cudaGetErrorString(rc), fr / MIB, tot / MIB, ci->device);
        return NULL;
    }
    return p;
}

static void cuda_free(hp_backend *be, void *p) {
    cuda_impl *ci = be->impl;
    cudaError_t rc = cudaFree(p);
    if (rc != cudaSuccess)
        failf(ci, "cuda: %s:%d: cudaFree: %s", __FILE__, __LINE__, cudaGetErrorString(rc));
}

static void *cuda_offset(hp_backend *be, void *p, size_t n, hp_mem m) {
    (void)be;
    return (char *)p + n * elem_bytes(m);
}

/* Pageable host memory: cudaMemcpyAsync returns once the source is staged by the driver, so
 * the caller may reuse it at once; the staging buffer in scratch is reused in stream order. */
static int upload_impl(cuda_impl *ci, void *dst, const void *src, size_t n, hp_mem m) {
    if (n == 0) return 0;
    if (m == HP_MEM_F32 || m == HP_MEM_I32) {
        CU(cudaMemcpyAsync(dst, src, n * 4, cudaMemcpyHostToDevice, ci->stream));
        return 0;
    }
    size_t chunk = n < STAGE_ELEMS ? n : STAGE_ELEMS;
    if (scratch_reserve(ci, chunk * sizeof(float))) return -1;
    for (size_t off = 0; off < n; off += chunk) {
        size_t c = n - off < chunk ? n - off : chunk;
        CU(cudaMemcpyAsync(ci->scratch, (const float *)src + off, c * sizeof(float),
                           cudaMemcpyHostToDevice, ci->stream));
        CU(hp_cuda_f32_to_bf16((hp_bf16 *)dst + off, ci->scratch, c, ci->stream));
    }
    return 0;
}

static int download_impl(cuda_impl *ci, void *dst, const void *src, size_t n, hp_mem m) {
    if (n == 0) return 0;
    if (m == HP_MEM_F32 || m == HP_MEM_I32) {
        CU(cudaMemcpyAsync(dst, src, n * 4, cudaMemcpyDeviceToHost, ci->stream));
    } else {
        size_t chunk = n < STAGE_ELEMS ? n : STAGE_ELEMS;
        if (scratch_reserve(ci, chunk * sizeof(float))) return -1;
        for (size_t off = 0; off < n; off += chunk) {
            size_t c = n - off < chunk ? n - off : chunk;
            CU(hp_cuda_bf16_to_f32(ci->scratch, (const hp_bf16 *)src + off, c, ci->stream));
            CU(cudaMemcpyAsync((float *)dst + off, ci->scratch, c * sizeof(float),
                               cudaMemcpyDeviceToHost, ci->stream));
        }
    }
    CU(cudaStreamSynchronize(ci->stream));
    return 0;
}

static int cuda_upload(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e) {
    cuda_impl *ci = be->impl;
    if (take_pending(ci, e)) return -1;
    return upload_impl(ci, dst, src, n, m) ? take_pending(ci, e) : 0;
}

static int cuda_download(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m,
                         hp_err *e) {
    cuda_impl *ci = be->impl;
    if (take_pending(ci, e)) return -1;
    return download_impl(ci, dst, src, n, m) ? take_pending(ci, e) : 0;
}

static int zero_impl(cuda_impl *ci, void *p, size_t n, hp_mem m) {
    if (n) CU(cudaMemsetAsync(p, 0, n * elem_bytes(m), ci->stream));
    return 0;
}

static int cuda_zero(hp_backend *be, void *p, size_t n, hp_mem m, hp_err *e) {
    cuda_impl *ci = be->impl;
    if (take_pending(ci, e)) return -1;
    return zero_impl(ci, p, n, m) ? take_pending(ci, e) : 0;
}

static int copy_impl(cuda_impl *ci, void *dst, const void *src, size_t n, hp_mem m) {
    if (n) CU(cudaMemcpyAsync(dst, src, n * elem_bytes(m), cudaMemcpyDeviceToDevice, ci->stream));
    return 0;
}

static int cuda_copy(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e) {
    cuda_impl *ci = be->impl;
    if (take_pending(ci, e)) return -1;
    return copy_impl(ci, dst, src, n, m) ? take_pending(ci, e) : 0;
}

/* Waits for the stream, then reports (and clears) what the kernels flagged. */
static int sync_impl(cuda_impl *ci) {
    CU(cudaMemcpyAsync(ci->hflags, ci->dflags, sizeof(unsigned), cudaMemcpyDeviceToHost,
                       ci->stream));
    CU(cudaStreamSynchronize(ci->stream));
    unsigned f = *ci->hflags;
    if (!f) return 0;
    *ci->hflags = 0;
    CU(cudaMemsetAsync(ci->dflags, 0, sizeof(unsigned), ci->stream));
    return failf(ci, "cuda: kernels reported bad indices:%s%s%s",
                 f & HP_CUDA_ERR_TOKEN_ID ? " token id outside the vocabulary (embed);" : "",
                 f & HP_CUDA_ERR_KV_SLOT ? " sequence slot or position outside the KV cache;" : "",
                 f & HP_CUDA_ERR_CAP_ROW ? " capture row outside [0, B) (head_readout);" : "");
}

static int cuda_sync(hp_backend *be, hp_err *e) {
    cuda_impl *ci = be->impl;
    if (take_pending(ci, e)) return -1;
    return sync_impl(ci) ? take_pending(ci, e) : 0;
}

/* ---- ops --------------------------------------------------------------------------------- */

static int cuda_embed(hp_backend *be, void *x, const void *table, const void *ids, int T, int D,
                      int V) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_embed(x, table, ids, T, D, V, ci->dflags, ci->stream));
    return 0;
}

static int cuda_rmsnorm(hp_backend *be, void *out, const void *x, const void *w, int T, int D,
                        float eps) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_rmsnorm(out, x, w, T, D, eps, ci->stream));
    return 0;
}

static int cuda_matmul(hp_backend *be, void *y, const void *x, const void *W, int T, int N, int K) {
    cuda_impl *ci = be->impl;
    const float one = 1.0f, zero = 0.0f;
    if (T < 0 || N <= 0 || K <= 0) return failf(ci, "cuda: matmul: bad shape T=%d N=%d K=%d", T, N, K);
    if (T == 0) return 0;
    CB(cublasGemmEx(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, W, CUDA_R_16BF, K, x,
                    CUDA_R_16BF, K, &zero, y, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F,
                    CUBLAS_GEMM_DEFAULT));
    return 0;
}

static int cuda_matmul_f32(hp_backend *be, void *y, const void *x, const void *W, int n, int N,
                           int K) {
    cuda_impl *ci = be->impl;
    const float one = 1.0f, zero = 0.0f;
    if (n < 0 || N <= 0 || K <= 0)
        return failf(ci, "cuda: matmul_f32: bad shape n=%d N=%d K=%d", n, N, K);
    if (n == 0) return 0;
    size_t nk = (size_t)n * K, nk8 = (nk + 7) & ~(size_t)7; /* lo starts 16-byte aligned */
    if (scratch_reserve(ci, 2 * nk8 * sizeof(hp_bf16))) return -1;
    hp_bf16 *hi = ci->scratch, *lo = hi + nk8;
    CU(hp_cuda_f32_split_bf16(hi, lo, x, nk, ci->stream));
    CB(cublasGemmEx(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, n, K, &one, W, CUDA_R_16BF, K, hi,
                    CUDA_R_16BF, K, &zero, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                    CUBLAS_GEMM_DEFAULT));
    CB(cublasGemmEx(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, n, K, &one, W, CUDA_R_16BF, K, lo,
                    CUDA_R_16BF, K, &one, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                    CUBLAS_GEMM_DEFAULT));
    return 0;
}

static int cuda_rope(hp_backend *be, void *x, const void *pos, const void *inv_freq, int T, int nh,
                     int Dh) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_rope(x, pos, inv_freq, T, nh, Dh, ci->stream));
    return 0;
}

static int cuda_kv_store(hp_backend *be, void *kc, void *vc, const void *k, const void *v,
                         const void *seq, const void *pos, int T, int KVD, int Tcap) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_kv_store(kc, vc, k, v, seq, pos, T, KVD, Tcap, ci->dflags, ci->stream));
    return 0;
}

static int cuda_attention(hp_backend *be, void *z, const void *q, const void *kc, const void *vc,
                          const void *seq, const void *pos, int T, int H, int KV, int Dh, int Tcap,
                          int window) {
    cuda_impl *ci = be->impl;
    if (!hp_cuda_attention_supported(ci->attn, Dh, kc, vc))
        return failf(ci, "cuda: attention variant %s cannot take head_dim %d (even, <= 256%s)",
                     hp_cuda_attention_variant_name(ci->attn), Dh,
                     ci->attn == HP_ATTN_TILED ? ", 64 or 128 with 16-byte aligned caches" : "");
    size_t ws = hp_cuda_attention_workspace(ci->attn, T, H, KV, Dh, Tcap, window, ci->sm_count);
    if (ws && scratch_reserve(ci, ws)) return -1;
    CU(hp_cuda_attention(z, q, kc, vc, seq, pos, T, H, KV, Dh, Tcap, window, ci->attn, ci->sm_count,
                         ci->scratch, ci->scratch_bytes, ci->dflags, ci->stream));
    return 0;
}

static int cuda_head_scale(hp_backend *be, void *z, const void *alpha, int T, int H, int Dh) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_head_scale(z, alpha, T, H, Dh, ci->stream));
    return 0;
}

static int cuda_head_readout(hp_backend *be, void *out, const void *z, const void *w,
                             const void *seq, const void *Wo, int T, int B, int H, int Dh, int D) {
    cuda_impl *ci = be->impl;
    const float one = 1.0f;
    if (T < 0 || B <= 0 || H <= 0 || Dh <= 0 || D <= 0)
        return failf(ci, "cuda: head_readout: bad shape T=%d B=%d H=%d Dh=%d D=%d", T, B, H, Dh, D);
    if (T == 0) return 0; /* out is accumulated: nothing to add */
    int HD = H * Dh;
    size_t nz = (size_t)B * HD, nz8 = (nz + 7) & ~(size_t)7;
    if (scratch_reserve(ci, nz8 * (sizeof(float) + 2 * sizeof(hp_bf16)))) return -1;
    float *zsum = ci->scratch;
    hp_bf16 *hi = (hp_bf16 *)(zsum + nz8), *lo = hi + nz8;
    CU(hp_cuda_readout_zsum(hi, lo, zsum, z, w, seq, T, B, HD, ci->dflags, ci->stream));
    /* per head h (batch index): C_h[D×B] (col-major, ld H·D, at out + h·D) +=
     * (W_O[:, h-slice] stored Dh×D, ld HD)^T · zs[:, h-slice] (Dh×B, ld HD) */
    const hp_bf16 *parts[2] = {hi, lo};
    for (int i = 0; i < 2; i++)
        CB(cublasGemmStridedBatchedEx(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, D, B, Dh, &one, Wo,
                                      CUDA_R_16BF, HD, (long long)Dh, parts[i], CUDA_R_16BF, HD,
                                      (long long)Dh, &one, out, CUDA_R_32F, H * D, (long long)D, H,
                                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

static int cuda_glu(hp_backend *be, void *out, const void *gate, const void *up, size_t n,
                    int act) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_glu(out, gate, up, n, act, ci->stream));
    return 0;
}

static int cuda_add(hp_backend *be, void *x, const void *y, size_t n) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_add(x, y, n, ci->stream));
    return 0;
}

static int cuda_gather_rows_f32(hp_backend *be, void *out, const void *x, const void *rows, int n,
                                int D) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_gather_rows_f32(out, x, rows, n, D, ci->stream));
    return 0;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

/* ---- the vision tower ---------------------------------------------------------------------- */

static int cuda_layernorm(hp_backend *be, void *out, const void *x, const void *w, const void *b,
                          int T, int D, float eps) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_layernorm(out, x, w, b, T, D, eps, ci->stream));
    return 0;
}

static int cuda_gelu(hp_backend *be, void *x, size_t n, int quick) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_gelu(x, n, quick, ci->stream));
    return 0;
}

static int cuda_add_bias(hp_backend *be, void *x, const void *b, int T, int N) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_add_bias(x, b, T, N, ci->stream));
    return 0;
}

/* Per sequence b, batched over the H heads (head h's columns start at h*Dh, row stride H*Dh):
 *   S_h = Q_h K_h^T / sqrt(Dh)   fp32 [N, N]: column-major S_h^T = K_h · Q_h^T, one
 *                                GEMM(OP_T, OP_N, m=N, n=N, k=Dh) per head, bf16 in, fp32 out;
 *   P_h = softmax rows of S_h     bf16 (vision.cu);
 *   Z_h = P_h V_h                 column-major Z_h^T = V_h^T · P_h^T: GEMM(OP_N, OP_N, m=Dh,
 *                                n=N, k=N), bf16 out straight into z's head columns.
 * Scratch: H·N² floats + H·N² bf16 (32 MiB for CLIP-L's 16 heads × 577²), reused by every b:
 * the stream orders them. */
static int cuda_attention_full(hp_backend *be, void *z, const void *q, const void *k, const void *v,
                               int B, int N, int H, int Dh) {
    cuda_impl *ci = be->impl;
    if (B < 0 || N <= 0 || H <= 0 || Dh <= 0)
        return failf(ci, "cuda: attention_full: bad shape B=%d N=%d H=%d Dh=%d", B, N, H, Dh);
    if (B == 0) return 0;
    size_t nn = (size_t)N * N, hnn = (size_t)H * nn, ld = (size_t)H * Dh;
    size_t s_bytes = (hnn * sizeof(float) + 255) & ~(size_t)255;
    if (scratch_reserve(ci, s_bytes + hnn * sizeof(hp_bf16))) return -1;
    float *S = ci->scratch;
    hp_bf16 *P = (hp_bf16 *)((char *)ci->scratch + s_bytes);
    const float scale = 1.0f / sqrtf((float)Dh), one = 1.0f, zero = 0.0f;
    for (int b = 0; b < B; b++) {
        size_t off = (size_t)b * N * ld;
        const hp_bf16 *qb = (const hp_bf16 *)q + off, *kb = (const hp_bf16 *)k + off;
        const hp_bf16 *vb = (const hp_bf16 *)v + off;
        hp_bf16 *zb = (hp_bf16 *)z + off;
        CB(cublasGemmStridedBatchedEx(ci->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, N, Dh, &scale, kb,
                                      CUDA_R_16BF, (int)ld, Dh, qb, CUDA_R_16BF, (int)ld, Dh, &zero,
                                      S, CUDA_R_32F, N, (long long)nn, H, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
        CU(hp_cuda_softmax_rows(P, S, (size_t)H * N, N, ci->stream));
        CB(cublasGemmStridedBatchedEx(ci->blas, CUBLAS_OP_N, CUBLAS_OP_N, Dh, N, N, &one, vb,
                                      CUDA_R_16BF, (int)ld, Dh, P, CUDA_R_16BF, N, (long long)nn,
                                      &zero, zb, CUDA_R_16BF, (int)ld, Dh, H, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
    }
    return 0;
}

static int cuda_im2col(hp_backend *be, void *cols, const void *img, int n, int C, int S, int p) {
    cuda_impl *ci = be->impl;
    CU(hp_cuda_im2col(cols, img, n, C, S, p, ci->stream));
    return 0;
}

static void cuda_destroy(hp_backend *be) {
    if (!be) return;
    cuda_impl *ci = be->impl;
    if (ci) {
        if (ci->stream) cudaStreamSynchronize(ci->stream);
        if (ci->blas) cublasDestroy(ci->blas);
        cudaFree(ci->blas_ws);
        cudaFree(ci->scratch);
        cudaFree(ci->dflags);
        if (ci->hflags) cudaFreeHost(ci->hflags);
        if (ci->stream) cudaStreamDestroy(ci->stream);
        cudaGetLastError(); /* teardown errors have no one to report to */
        free(ci);
    }
    free(be);
}

static int cuda_init(cuda_impl *ci) {
    CU(cudaSetDevice(ci->device));
    CU(cudaStreamCreateWithFlags(&ci->stream, cudaStreamNonBlocking));
    CB(cublasCreate(&ci->blas));
    CB(cublasSetStream(ci->blas, ci->stream));
    CU(cudaMalloc(&ci->blas_ws, BLAS_WORKSPACE));
    CB(cublasSetWorkspace(ci->blas, ci->blas_ws, BLAS_WORKSPACE));
    CU(cudaMalloc((void **)&ci->dflags, sizeof(unsigned)));
    CU(cudaMemsetAsync(ci->dflags, 0, sizeof(unsigned), ci->stream));
    CU(cudaMallocHost((void **)&ci->hflags, sizeof(unsigned)));
    *ci->hflags = 0;
    CU(cudaStreamSynchronize(ci->stream));
    return 0;
}

int hp_backend_cuda_set_attention(struct hp_backend *be, hp_attn_variant v) {
    if (!be || be->destroy != cuda_destroy) return -1;
    ((cuda_impl *)be->impl)->attn = v;
    return 0;
}

hp_backend *hp_backend_cuda_create(int device, hp_err *e) {
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n <= 0) {
        cudaGetLastError();
        hp_errf(e, "no CUDA driver / no GPU (%s)",
                rc != cudaSuccess ? cudaGetErrorString(rc) : "the driver finds no device");
        return NULL;
    }
    if (device < 0 || device >= n) {
        hp_errf(e, "cuda: device %d does not exist (%d found)", device, n);
        return NULL;
    }
    struct cudaDeviceProp prop;
    if ((rc = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
        hp_errf(e, "cuda: cudaGetDeviceProperties(%d): %s", device, cudaGetErrorString(rc));
        return NULL;
    }
    /* The kernels are built for sm_90a with compute_90 PTX: nothing older can load them. */
    if (prop.major < 9) {
        hp_errf(e, "cuda: %s has compute capability %d.%d; this build targets 9.0 and newer (CUDA_ARCH in the Makefile)",
                prop.name, prop.major, prop.minor);
        return NULL;
    }
    hp_backend *be = calloc(1, sizeof *be);
    cuda_impl *ci = calloc(1, sizeof *ci);
    if (!be || !ci) {
        free(be);
        free(ci);
        hp_errf(e, "cuda: out of memory");
        return NULL;
    }
    be->impl = ci;
    ci->device = device;
    ci->sm_count = prop.multiProcessorCount;
    ci->attn = HP_ATTN_AUTO;
    be->destroy = cuda_destroy; /* before init: a failed init is torn down through it */
    if (cuda_init(ci)) {
        hp_errf(e, "%s", ci->err);
        cuda_destroy(be);
        return NULL;
    }
    be->name = "cuda";
    snprintf(be->desc, sizeof be->desc,
             "cuda:%d %.120s (%.1f GiB, sm_%d%d, %d SMs; bf16 weights and activations, cuBLAS)", device,
             prop.name, prop.totalGlobalMem / (MIB * 1024.0), prop.major, prop.minor,
             prop.multiProcessorCount);
    be->free_bytes = cuda_free_bytes;
    be->elem_size = cuda_elem_size;
    be->alloc = cuda_alloc;
    be->free = cuda_free;
    be->offset = cuda_offset;
    be->upload = cuda_upload;
    be->download = cuda_download;
    be->zero = cuda_zero;
    be->copy = cuda_copy;
    be->sync = cuda_sync;
    be->embed = cuda_embed;
    be->rmsnorm = cuda_rmsnorm;
    be->matmul = cuda_matmul;
    be->rope = cuda_rope;
    be->kv_store = cuda_kv_store;
    be->attention = cuda_attention;
    be->head_scale = cuda_head_scale;
    be->head_readout = cuda_head_readout;
    be->glu = cuda_glu;
    be->add = cuda_add;
    be->gather_rows_f32 = cuda_gather_rows_f32;
    be->matmul_f32 = cuda_matmul_f32;
    be->layernorm = cuda_layernorm;
    be->gelu = cuda_gelu;
    be->add_bias = cuda_add_bias;
    be->attention_full = cuda_attention_full;
    be->im2col = cuda_im2col;
    return be;
}

#endif /* HP_HAVE_CUDA */
