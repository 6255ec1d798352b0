/* ops_cuda.h: plain-C declarations of the CUDA kernels' launchers (kernels/ *.cu), the GPU twins
 * of ops_cpu.h. Each launcher takes device pointers, the shapes in the project's dimension
 * names and a stream, enqueues its kernels and returns the launch status (cudaSuccess, or
 * cudaErrorInvalidValue for shapes it cannot take); faults inside a kernel surface at the next
 * synchronisation. Element types on the device: bf16 for weights and activations (stored as
 * hp_bf16 bit patterns here so that C code never needs cuda_bf16.h), float for F32 buffers,
 * int32 for ids. Accumulation is always fp32.
 *
 * Kernels never stop on bad indices (a device cannot return an error code): they skip the
 * element, write NaN where an output depends on it, and set a bit in the error word *err,
 * which the backend reads at sync(). */
#ifndef HP_OPS_CUDA_H
#define HP_OPS_CUDA_H

#if defined(HP_HAVE_CUDA) || defined(__CUDACC__)

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t hp_bf16; /* bfloat16 bit pattern on the device */

/* Bits of the device error word. */
enum {
    HP_CUDA_ERR_TOKEN_ID = 1u << 0, /* embed: id outside [0, V) */
    HP_CUDA_ERR_KV_SLOT = 1u << 1,  /* kv_store/attention: seq < 0 or pos outside [0, Tcap) */
    HP_CUDA_ERR_CAP_ROW = 1u << 2,  /* head_readout: seq outside [0, B) */
};

/* convert.cu: host-format <-> device-format conversions, and the bf16 hi/lo split that lets a
 * bf16 tensor-core GEMM take a float32 operand: x = hi + lo with hi = bf16(x),
 * lo = bf16(x - hi), so x is carried to ~16 mantissa bits (relative error <= 2^-17). */
cudaError_t hp_cuda_f32_to_bf16(hp_bf16 *dst, const float *src, size_t n, cudaStream_t st);
cudaError_t hp_cuda_bf16_to_f32(float *dst, const hp_bf16 *src, size_t n, cudaStream_t st);
cudaError_t hp_cuda_f32_split_bf16(hp_bf16 *hi, hp_bf16 *lo, const float *src, size_t n,
                                   cudaStream_t st);

/* embed.cu: x[t,:] = table[ids[t],:] (table V×D); out[i,:] = float(x[rows[i],:]). */
cudaError_t hp_cuda_embed(hp_bf16 *x, const hp_bf16 *table, const int32_t *ids, int T, int D,
                          int V, unsigned *err, cudaStream_t st);
cudaError_t hp_cuda_gather_rows_f32(float *out, const hp_bf16 *x, const int32_t *rows, int n,
                                    int D, cudaStream_t st);

/* norm.cu: out[t,:] = x[t,:] / sqrt(mean(x[t,:]^2) + eps) * w; out may alias x. */
cudaError_t hp_cuda_rmsnorm(hp_bf16 *out, const hp_bf16 *x, const hp_bf16 *w, int T, int D,
                            float eps, cudaStream_t st);

/* rope.cu: rotate-half RoPE in place on x [T, nh, Dh] at positions pos[t]; inv_freq: device
 * float [Dh/2], pair i's inverse frequency (hp_rope_inv_freq). */
cudaError_t hp_cuda_rope(hp_bf16 *x, const int32_t *pos, const float *inv_freq, int T, int nh,
                         int Dh, cudaStream_t st);

/* act.cu: out = act(gate) * up, act an HP_GLU_* of ops_cpu.h (out may alias gate or up);
 * x += y. */
cudaError_t hp_cuda_glu(hp_bf16 *out, const hp_bf16 *gate, const hp_bf16 *up, size_t n, int act,
                        cudaStream_t st);
cudaError_t hp_cuda_add(hp_bf16 *x, const hp_bf16 *y, size_t n, cudaStream_t st);

/* attention.cu: KV-cache writes and causal / sliding-window GQA attention over packed tokens,
 * the semantics of hp_cpu_kv_store / hp_cpu_attention. kc, vc: [S][Tcap][KV*Dh]. */
cudaError_t hp_cuda_kv_store(hp_bf16 *kc, hp_bf16 *vc, const hp_bf16 *k, const hp_bf16 *v,
                             const int32_t *seq, const int32_t *pos, int T, int KVD, int Tcap,
                             unsigned *err, cudaStream_t st);

/* Attention variants (the table in attention.cu; bench/ times each):
 *   HP_ATTN_AUTO   tiled for 64-token tiles holding at most a few sequences (prefill), split
 *                  for the rest (decode steps, many short sequences), decided on the device
 *   HP_ATTN_SPLIT  attn_decode_split: one block per (token, KV head, key chunk), fp32 SIMT
 *   HP_ATTN_TILED  attn_prefill_tiled: flash-style tensor-core (mma.sync bf16) kernel for
 *                  every tile; only Dh in {64, 128} with 16-byte aligned caches. */
typedef enum hp_attn_variant { HP_ATTN_AUTO = 0, HP_ATTN_SPLIT, HP_ATTN_TILED } hp_attn_variant;

const char *hp_cuda_attention_variant_name(hp_attn_variant v);
/* 1 when variant v can run this shape (AUTO and SPLIT: even Dh <= 256). */
int hp_cuda_attention_supported(hp_attn_variant v, int Dh, const void *kc, const void *vc);
/* Device scratch bytes hp_cuda_attention needs for this shape (0 possible). */
size_t hp_cuda_attention_workspace(hp_attn_variant v, int T, int H, int KV, int Dh, int Tcap,
                                   int window, int sm_count);
cudaError_t hp_cuda_attention(hp_bf16 *z, const hp_bf16 *q, const hp_bf16 *kc, const hp_bf16 *vc,
                              const int32_t *seq, const int32_t *pos, int T, int H, int KV, int Dh,
                              int Tcap, int window, hp_attn_variant v, int sm_count, void *work,
                              size_t work_bytes, unsigned *err, cudaStream_t st);

/* readout.cu: z[t, h-slice] *= alpha[h]; and the first half of head_readout: per sequence b,
 * zs[b, :] = Σ_{t: seq[t]==b, w[t]!=0} w[t]·z[t, :] in fp32, returned split into bf16
 * hi [B, H*Dh] and lo [B, H*Dh] for the per-head GEMM with W_O that the backend runs through
 * cuBLAS. zsum is float [B, H*Dh] scratch (overwritten). */
cudaError_t hp_cuda_head_scale(hp_bf16 *z, const float *alpha, int T, int H, int Dh,
                               cudaStream_t st);
cudaError_t hp_cuda_readout_zsum(hp_bf16 *hi, hp_bf16 *lo, float *zsum, const hp_bf16 *z,
                                 const float *w, const int32_t *seq, int T, int B, int HD,
                                 unsigned *err, cudaStream_t st);

/* vision.cu: the CLIP tower's ops (the semantics of ops_cpu.h's layernorm, gelu/quick_gelu,
 * add_bias, im2col_patches), and the row softmax of attention_full: p[r, :] = softmax(s[r, :])
 * over rows of N fp32 scores, written as bf16 (the P·V GEMM operand). im2col: n_img float32
 * images [C][S][S] to bf16 rows [n_img·(S/p)², C·p·p]. */
cudaError_t hp_cuda_layernorm(hp_bf16 *out, const hp_bf16 *x, const hp_bf16 *w, const hp_bf16 *b,
                              int T, int D, float eps, cudaStream_t st);
cudaError_t hp_cuda_gelu(hp_bf16 *x, size_t n, int quick, cudaStream_t st);
cudaError_t hp_cuda_add_bias(hp_bf16 *x, const hp_bf16 *b, int T, int N, cudaStream_t st);
cudaError_t hp_cuda_softmax_rows(hp_bf16 *p, const float *s, size_t rows, int N, cudaStream_t st);
cudaError_t hp_cuda_im2col(hp_bf16 *cols, const float *img, int n_img, int C, int S, int p,
                           cudaStream_t st);

/* backend_cuda.c: controls of the CUDA backend that only tests and bench/ use. */
struct hp_backend;
/* Forces an attention variant on a CUDA backend (default HP_ATTN_AUTO); -1 if be is not one. */
int hp_backend_cuda_set_attention(struct hp_backend *be, hp_attn_variant v);

#ifdef __cplusplus
}
#endif

#endif /* HP_HAVE_CUDA || __CUDACC__ */
#endif
