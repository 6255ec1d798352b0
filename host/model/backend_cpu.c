/* backend_cpu.c: the CPU backend: host memory, float32 activations, ops from kernels/ *.c.
 * GGUF weight matrices of the types kernels/matmul_q.c multiplies stay in their stored type. */
#include "backend.h"
#include "ops_cpu.h"
#include "ops_cpu_q.h"
#include "store.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void cpu_destroy(hp_backend *be) { free(be); }
/* Unbounded, unless HP_CPU_MEM_LIMIT_KB caps it (to exercise the out-of-memory paths that a
 * GPU's memory limit takes, on any machine). */
static size_t cpu_free_bytes(hp_backend *be) {
    (void)be;
    const char *lim = getenv("HP_CPU_MEM_LIMIT_KB");
    return lim && *lim ? (size_t)strtoull(lim, NULL, 10) * 1024 : SIZE_MAX;
}
static size_t cpu_elem_size(hp_backend *be, hp_mem m) {
    (void)be;
    (void)m;
    return 4; /* f32 and i32 */
}
static void *cpu_alloc(hp_backend *be, size_t n, hp_mem m, hp_err *e) {
    size_t bytes;
    if (!hp_mul_ok(n ? n : 1, cpu_elem_size(be, m), &bytes)) {
        hp_errf(e, "cpu: allocation of %zu elements overflows", n);
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) {
        hp_errf(e, "cpu: out of memory allocating %.1f MiB", bytes / 1048576.0);
        return NULL;
    }
    return p;
}
static void cpu_free(hp_backend *be, void *p) {
    (void)be;
    free(p);
}
static void *cpu_offset(hp_backend *be, void *p, size_t n, hp_mem m) {
    return (char *)p + n * cpu_elem_size(be, m);
}
static int cpu_copy(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e) {
    (void)be;
    (void)e;
    memcpy(dst, src, n * 4);
    (void)m;
    return 0;
}
static int cpu_zero(hp_backend *be, void *p, size_t n, hp_mem m, hp_err *e) {
    (void)be;
    (void)m;
    (void)e;
    memset(p, 0, n * 4);
    return 0;
}
static int cpu_sync(hp_backend *be, hp_err *e) {
    (void)be;
    (void)e;
    return 0;
}
static int cpu_embed(hp_backend *be, void *x, const void *table, const void *ids, int T, int D,
                     int V) {
    (void)be;
    return hp_cpu_embed(x, table, ids, T, D, V);
}
static int cpu_rmsnorm(hp_backend *be, void *out, const void *x, const void *w, int T, int D,
                       float eps) {
    (void)be;
    hp_cpu_rmsnorm(out, x, w, T, D, eps);
    return 0;
}
static int cpu_matmul(hp_backend *be, void *y, const void *x, const void *W, int T, int N, int K) {
    (void)be;
    hp_cpu_matmul(y, x, W, T, N, K, 0.0f);
    return 0;
}
static int cpu_rope(hp_backend *be, void *x, const void *pos, const void *inv_freq, int T, int nh,
                    int Dh) {
    (void)be;
    hp_cpu_rope(x, pos, inv_freq, T, nh, Dh);
    return 0;
}
static int cpu_kv_store(hp_backend *be, void *kc, void *vc, const void *k, const void *v,
                        const void *seq, const void *pos, int T, int KVD, int Tcap) {
    (void)be;
    hp_cpu_kv_store(kc, vc, k, v, seq, pos, T, KVD, Tcap);
    return 0;
}
static int cpu_attention(hp_backend *be, void *z, const void *q, const void *kc, const void *vc,
                         const void *seq, const void *pos, int T, int H, int KV, int Dh, int Tcap,
                         int window) {
    (void)be;
    hp_cpu_attention(z, q, kc, vc, seq, pos, T, H, KV, Dh, Tcap, window);
    return 0;
}
static int cpu_head_scale(hp_backend *be, void *z, const void *alpha, int T, int H, int Dh) {
    (void)be;
    hp_cpu_head_scale(z, alpha, T, H, Dh);
    return 0;
}
static int cpu_head_readout(hp_backend *be, void *out, const void *z, const void *w,
                            const void *seq, const void *Wo, int T, int B, int H, int Dh, int D) {
    (void)be;
    return hp_cpu_head_readout(out, z, w, seq, Wo, T, B, H, Dh, D);
}
static int cpu_glu(hp_backend *be, void *out, const void *gate, const void *up, size_t n,
                   int act) {
    (void)be;
    hp_cpu_glu(out, gate, up, n, act);
    return 0;
}
static int cpu_add(hp_backend *be, void *x, const void *y, size_t n) {
    (void)be;
    hp_cpu_add(x, y, n);
    return 0;
}
static int cpu_gather_rows_f32(hp_backend *be, void *out, const void *x, const void *rows, int n,
                               int D) {
    (void)be;
    const int32_t *r = rows;
    for (int i = 0; i < n; i++)
        memcpy((float *)out + (size_t)i * D, (const float *)x + (size_t)r[i] * D, 4 * (size_t)D);
    return 0;
}
static int cpu_layernorm(hp_backend *be, void *out, const void *x, const void *w, const void *b,
                         int T, int D, float eps) {
    (void)be;
    hp_cpu_layernorm(out, x, w, b, T, D, eps);
    return 0;
}
static int cpu_gelu(hp_backend *be, void *x, size_t n, int quick) {
    (void)be;
    if (quick) hp_cpu_quick_gelu(x, n);
    else hp_cpu_gelu(x, n);
    return 0;
}
static int cpu_add_bias(hp_backend *be, void *x, const void *b, int T, int N) {
    (void)be;
    hp_cpu_add_bias(x, b, T, N);
    return 0;
}
static int cpu_attention_full(hp_backend *be, void *z, const void *q, const void *k, const void *v,
                              int B, int N, int H, int Dh) {
    (void)be;
    return hp_cpu_attention_full(z, q, k, v, B, N, H, Dh);
}
static int cpu_im2col(hp_backend *be, void *cols, const void *img, int n, int C, int S, int p) {
    (void)be;
    size_t rows = (size_t)(S / p) * (S / p), K = (size_t)C * p * p, pix = (size_t)C * S * S;
    for (int i = 0; i < n; i++)
        hp_cpu_im2col_patches((float *)cols + i * rows * K, (const float *)img + i * pix, C, S, p);
    return 0;
}

static int cpu_keeps_dtype(hp_backend *be, hp_dtype dt) {
    (void)be;
    return hp_cpu_q_supported(dt);
}
static void *cpu_alloc_bytes(hp_backend *be, size_t bytes, hp_err *e) {
    (void)be;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
        hp_errf(e, "cpu: out of memory allocating %.1f MiB", bytes / 1048576.0);
        return NULL;
    }
    return p;
}
static int cpu_upload_bytes(hp_backend *be, void *dst, const void *src, size_t bytes, hp_err *e) {
    (void)be;
    (void)e;
    memcpy(dst, src, bytes);
    return 0;
}
static int cpu_matmul_q(hp_backend *be, void *y, const void *x, const void *W, hp_dtype dt, int T,
                        int N, int K, int f32) {
    (void)be;
    (void)f32; /* activations are float32 here */
    return hp_cpu_matmul_q(y, x, W, dt, T, N, K);
}
static int cpu_embed_q(hp_backend *be, void *x, const void *table, hp_dtype dt, const void *ids,
                       int T, int D, int V) {
    (void)be;
    return hp_cpu_embed_q(x, table, dt, ids, T, D, V);
}
static int cpu_dequant_q(hp_backend *be, void *dst, const void *W, hp_dtype dt, size_t n) {
    (void)be;
    hp_dequant_f32(dt, W, dst, n);
    return 0;
}

void hp_cpu_thread_policy(char **argv) {
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        execv("/proc/self/exe", argv);
    }
}

void hp_backend_weights_f32(hp_backend *be) {
    if (!be || !be->keeps_dtype) return;
    be->keeps_dtype = NULL;
    if (!strcmp(be->name, "cpu")) {
        char *p = strstr(be->desc, ", stored weight types");
        if (p) snprintf(p, sizeof be->desc - (size_t)(p - be->desc), ", float32 weights)");
    }
}

hp_backend *hp_backend_cpu_create(int threads, hp_err *e) {
    hp_backend *be = calloc(1, sizeof *be);
    if (!be) {
        hp_errf(e, "cpu: out of memory");
        return NULL;
    }
    if (threads > 0) omp_set_num_threads(threads);
    be->name = "cpu";
    snprintf(be->desc, sizeof be->desc,
             "cpu (float32, %d OpenMP threads, OpenBLAS, stored weight types, %s kernels)",
             omp_get_max_threads(), hp_cpu_q_isa());
    be->destroy = cpu_destroy;
    be->free_bytes = cpu_free_bytes;
    be->elem_size = cpu_elem_size;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->offset = cpu_offset;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->zero = cpu_zero;
    be->copy = cpu_copy;
    be->sync = cpu_sync;
    be->embed = cpu_embed;
    be->rmsnorm = cpu_rmsnorm;
    be->matmul = cpu_matmul;
    be->rope = cpu_rope;
    be->kv_store = cpu_kv_store;
    be->attention = cpu_attention;
    be->head_scale = cpu_head_scale;
    be->head_readout = cpu_head_readout;
    be->glu = cpu_glu;
    be->add = cpu_add;
    be->gather_rows_f32 = cpu_gather_rows_f32;
    be->matmul_f32 = cpu_matmul;
    be->layernorm = cpu_layernorm;
    be->gelu = cpu_gelu;
    be->add_bias = cpu_add_bias;
    be->attention_full = cpu_attention_full;
    be->im2col = cpu_im2col;
    be->keeps_dtype = cpu_keeps_dtype;
    be->alloc_bytes = cpu_alloc_bytes;
    be->upload_bytes = cpu_upload_bytes;
    be->matmul_q = cpu_matmul_q;
    be->embed_q = cpu_embed_q;
    be->dequant_q = cpu_dequant_q;
    return be;
}

#ifndef HP_HAVE_CUDA
hp_backend *hp_backend_cuda_create(int device, hp_err *e) {
    (void)device;
    hp_errf(e, "cuda: this build has no CUDA backend (nvcc was not found or NO_CUDA=1)");
    return NULL;
}
#endif

hp_backend *hp_backend_create(const char *which, hp_err *e) {
    if (!which || !strcmp(which, "auto")) {
        hp_err ignore;
        hp_backend *be = hp_backend_cuda_create(0, &ignore);
        return be ? be : hp_backend_cpu_create(0, e);
    }
    if (!strcmp(which, "cpu")) return hp_backend_cpu_create(0, e);
    if (!strcmp(which, "cuda")) return hp_backend_cuda_create(0, e);
    hp_errf(e, "unknown device '%s' (expected auto, cpu or cuda)", which);
    return NULL;
}
