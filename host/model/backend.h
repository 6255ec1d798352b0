/* backend.h: the one interface every compute backend (CPU, CUDA) implements. The model code in
 * host/ is written once against it: memory is opaque (void * into the backend's memory, element
 * type chosen by the backend per memory class), and each op takes shapes in the project's fixed
 * dimension names. Ops are asynchronous on the CUDA backend; errors surface at the latest at
 * sync(). */
#ifndef HP_BACKEND_H
#define HP_BACKEND_H

#include "common.h"

typedef enum hp_mem {
    HP_MEM_WEIGHT = 0, /* matrices and norms: CPU f32, CUDA bf16 */
    HP_MEM_ACT,        /* activations, KV cache: CPU f32, CUDA bf16 */
    HP_MEM_F32,        /* always float32 (logits, readouts, alphas, capture weights) */
    HP_MEM_I32,        /* token ids, positions, slots, row indices */
} hp_mem;

typedef struct hp_backend hp_backend;
struct hp_backend {
    const char *name; /* "cpu" or "cuda" */
    void *impl;
    char desc[256];   /* one line for logs: threads / device name and memory */

    void (*destroy)(hp_backend *be);
    /* Memory free on the backend right now (for sizing batches); SIZE_MAX if unbounded. */
    size_t (*free_bytes)(hp_backend *be);
    size_t (*elem_size)(hp_backend *be, hp_mem m);
    void *(*alloc)(hp_backend *be, size_t n, hp_mem m, hp_err *e);
    void (*free)(hp_backend *be, void *p);
    /* p advanced by n elements of class m (for named pointers into one allocation). */
    void *(*offset)(hp_backend *be, void *p, size_t n, hp_mem m);
    /* Host <-> backend copies; host side is float32 (or int32 for HP_MEM_I32), converted. */
    int (*upload)(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e);
    int (*download)(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e);
    int (*zero)(hp_backend *be, void *p, size_t n, hp_mem m, hp_err *e);
    /* dst = src, n elements of class m, both on the backend. */
    int (*copy)(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e);
    int (*sync)(hp_backend *be, hp_err *e);

    /* Ops. x, out: [T, D] activations; weights nn.Linear layout [N, K]. ids/seq/pos/rows: I32. */
    int (*embed)(hp_backend *be, void *x, const void *table, const void *ids, int T, int D, int V);
    int (*rmsnorm)(hp_backend *be, void *out, const void *x, const void *w, int T, int D, float eps);
    int (*matmul)(hp_backend *be, void *y, const void *x, const void *W, int T, int N, int K);
    /* inv_freq: F32 [Dh/2], each rotary pair's inverse frequency (hp_rope_inv_freq). */
    int (*rope)(hp_backend *be, void *x, const void *pos, const void *inv_freq, int T, int nh,
                int Dh);
    int (*kv_store)(hp_backend *be, void *kc, void *vc, const void *k, const void *v,
                    const void *seq, const void *pos, int T, int KVD, int Tcap);
    int (*attention)(hp_backend *be, void *z, const void *q, const void *kc, const void *vc,
                     const void *seq, const void *pos, int T, int H, int KV, int Dh, int Tcap,
                     int window);
    int (*head_scale)(hp_backend *be, void *z, const void *alpha, int T, int H, int Dh);
    int (*head_readout)(hp_backend *be, void *out, const void *z, const void *w, const void *seq,
                        const void *Wo, int T, int B, int H, int Dh, int D);
    /* out = act(gate) * up, act an HP_GLU_* (kernels/ops_cpu.h: silu, gelu, gelu tanh, relu). */
    int (*glu)(hp_backend *be, void *out, const void *gate, const void *up, size_t n, int act);
    int (*add)(hp_backend *be, void *x, const void *y, size_t n);
    /* out[i, :] = x[rows[i], :] (rows of a [T, D] activation), output as float32. */
    int (*gather_rows_f32)(hp_backend *be, void *out, const void *x, const void *rows, int n, int D);
    /* y[n, N] = x[n, K] (float32) · W[N, K]^T, output float32 (the lm_head / readout product). */
    int (*matmul_f32)(hp_backend *be, void *y, const void *x, const void *W, int n, int N, int K);

    /* ---- the CLIP vision tower and the LLaVA projector (ops_cpu.h has the semantics) ---- */
    /* out[t,:] = LayerNorm(x[t,:]) * w + b, biased variance; out may alias x. w, b: WEIGHT. */
    int (*layernorm)(hp_backend *be, void *out, const void *x, const void *w, const void *b, int T,
                     int D, float eps);
    /* In place on n activations: exact (erf) GELU, or quick_gelu x·sigmoid(1.702x) if quick. */
    int (*gelu)(hp_backend *be, void *x, size_t n, int quick);
    /* x[t, :] += b[:] over a [T, N] activation; b: WEIGHT [N]. */
    int (*add_bias)(hp_backend *be, void *x, const void *b, int T, int N);
    /* Non-causal attention over B sequences of N positions, q, k, v, z [B*N, H*Dh] activations;
     * -1 when out of memory for the scores (then sync() reports it). */
    int (*attention_full)(hp_backend *be, void *z, const void *q, const void *k, const void *v,
                          int B, int N, int H, int Dh);
    /* The patches of n float32 images [n][C][S][S] (HP_MEM_F32) as rows of the activation
     * cols [n*(S/p)^2, C*p*p], as hp_cpu_im2col_patches per image. */
    int (*im2col)(hp_backend *be, void *cols, const void *img, int n, int C, int S, int p);

    /* ---- weights kept in their stored block type (GGUF Q4_0, Q4_K, ...). Backends that keep
     * none leave these NULL and receive every weight converted to their HP_MEM_WEIGHT type. ---- */
    /* Whether a matrix stored as dt is kept as is (then the ops below take it). */
    int (*keeps_dtype)(hp_backend *be, hp_dtype dt);
    /* Such weights live in byte-addressed memory: alloc_bytes / upload_bytes, and be->free. */
    void *(*alloc_bytes)(hp_backend *be, size_t bytes, hp_err *e);
    int (*upload_bytes)(hp_backend *be, void *dst, const void *src, size_t bytes, hp_err *e);
    /* y[T, N] = x[T, K] · W^T as matmul, W: N rows of hp_dtype_nbytes(dt, K) bytes. y and x are
     * activations, or float32 (the lm_head) where f32 is set. */
    int (*matmul_q)(hp_backend *be, void *y, const void *x, const void *W, hp_dtype dt, int T,
                    int N, int K, int f32);
    /* embed with the table [V, D] stored as dt. */
    int (*embed_q)(hp_backend *be, void *x, const void *table, hp_dtype dt, const void *ids, int T,
                   int D, int V);
    /* dst (n elements of HP_MEM_WEIGHT) = the n values of W stored as dt. */
    int (*dequant_q)(hp_backend *be, void *dst, const void *W, hp_dtype dt, size_t n);
};

hp_backend *hp_backend_cpu_create(int threads, hp_err *e);
/* The thread policy of every program that runs the CPU backend (./headpursuit, bench_cpu): unless
 * the user chose OMP_WAIT_POLICY, sets it to PASSIVE and restarts the program once (the OpenMP
 * runtime reads it at load time): OpenMP threads that spin between parallel regions starve BLAS
 * and each other on a small or shared machine (measured: 5x slower generation). Decode products
 * run on the backend's own pool instead (kernels/pool_cpu.c: brief spinning, then sleep). */
void hp_cpu_thread_policy(char **argv);
/* Makes the backend convert every weight to its HP_MEM_WEIGHT type at load (the float32
 * reference path on the CPU; `--weights-f32`). */
void hp_backend_weights_f32(hp_backend *be);
/* NULL with e set when CUDA is not compiled in or no device can be used. */
hp_backend *hp_backend_cuda_create(int device, hp_err *e);
/* "auto" (CUDA when a device exists, else CPU), "cpu" or "cuda". */
hp_backend *hp_backend_create(const char *which, hp_err *e);

#endif
