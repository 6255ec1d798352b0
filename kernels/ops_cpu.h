/* ops_cpu.h: the CPU implementations of every forward-pass op, in float32. They are the CPU
 * backend and the reference that each CUDA kernel is tested against. Tokens are packed: T rows,
 * each row one token of some sequence (seq[t]) at some position (pos[t]); the KV cache holds
 * S sequence slots of Tcap positions. */
#ifndef HP_OPS_CPU_H
#define HP_OPS_CPU_H

#include <stddef.h>
#include <stdint.h>

/* embed.c: x[t,:] = table[ids[t],:]; table V×D. Returns -1 if an id is out of range. */
int hp_cpu_embed(float *x, const float *table, const int32_t *ids, int T, int D, int V);

/* norm.c: out[t,:] = x[t,:] / sqrt(mean(x[t,:]^2) + eps) * w. out may alias x. */
void hp_cpu_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps);

/* matmul.c: y[T,N] = x[T,K] · W[N,K]^T (+ beta·y). Through BLAS. */
void hp_cpu_matmul(float *y, const float *x, const float *W, int T, int N, int K, float beta);

/* rope.c: rotary embedding in the rotate-half layout (pairs i, i+Dh/2), in place on x [T, nh,
 * Dh] at positions pos[t]; pair i turns by pos[t] * inv_freq[i] (inv_freq [Dh/2]: theta^(-2i/Dh)
 * under the model's rope scaling, hp_rope_inv_freq). */
void hp_cpu_rope(float *x, const int32_t *pos, const float *inv_freq, int T, int nh, int Dh);

/* attention.c: writes K,V rows of the T tokens into the cache at (seq[t], pos[t]), then
 * z[t, h*Dh..] = softmax(q·K^T/sqrt(Dh)) V over cache positions j of seq[t] with
 * j <= pos[t] and, when window > 0, j > pos[t] - window. GQA: head h reads kv head h/(H/KV).
 * kc, vc: [S][Tcap][KV*Dh]. */
void hp_cpu_kv_store(float *kc, float *vc, const float *k, const float *v, const int32_t *seq,
                     const int32_t *pos, int T, int KVD, int Tcap);
void hp_cpu_attention(float *z, const float *q, const float *kc, const float *vc,
                      const int32_t *seq, const int32_t *pos, int T, int H, int KV, int Dh,
                      int Tcap, int window);

/* act.c: the gated MLP out = act(gate) * up (out may alias gate or up), act one of these
 * (transformers' hidden_act names; hp_config.mlp_act holds one); x += y. */
enum { HP_GLU_SILU = 0, HP_GLU_GELU = 1, HP_GLU_GELU_TANH = 2, HP_GLU_RELU = 3 };
void hp_cpu_glu(float *out, const float *gate, const float *up, size_t n, int act);
void hp_cpu_add(float *x, const float *y, size_t n);

/* readout.c: head editing and per-head residual contributions.
 * head_scale: z[t, h*Dh..(h+1)*Dh] *= alpha[h] for every token (the paper's edit).
 * head_readout: out[b, h, :] += Σ_{t: seq[t]==b} w[t] · z[t, h-slice] · Wo[:, h-slice]^T, i.e.
 * the weighted sum over tokens of head h's contribution to the residual stream. Wo: D × (H·Dh).
 * out: [B, H, D] (accumulated: zero it first). Returns -1 when out of memory. */
void hp_cpu_head_scale(float *z, const float *alpha, int T, int H, int Dh);
int hp_cpu_head_readout(float *out, const float *z, const float *w, const int32_t *seq,
                         const float *Wo, int T, int B, int H, int Dh, int D);

/* ---- the CLIP vision tower and the LLaVA projector ---- */

/* layernorm.c: out[t,:] = (x[t,:] - mean) / sqrt(var + eps) * w + b (biased variance, as
 * nn.LayerNorm). out may alias x. */
void hp_cpu_layernorm(float *out, const float *x, const float *w, const float *b, int T, int D,
                      float eps);

/* gelu.c: in place. gelu: exact erf form (nn.GELU, transformers "gelu"); quick_gelu:
 * x * sigmoid(1.702 x) (transformers "quick_gelu", CLIP's MLP). */
void hp_cpu_gelu(float *x, size_t n);
void hp_cpu_quick_gelu(float *x, size_t n);

/* bias.c: x[t, :] += b[:] for t < T; x is [T, N]. */
void hp_cpu_add_bias(float *x, const float *b, int T, int N);

/* attention_full.c: non-causal attention over B sequences of N positions: q, k, v, z are
 * [B*N, H*Dh] (biases already added); z[b,i,h] = softmax_j(q[b,i,h]·k[b,j,h]/sqrt(Dh)) v[b,j,h]
 * over all j < N. Returns -1 when out of memory (an N×N score buffer). */
int hp_cpu_attention_full(float *z, const float *q, const float *k, const float *v, int B, int N,
                          int H, int Dh);

/* im2col.c: the (S/p)^2 non-overlapping p×p patches of img [C, S, S] as rows of out
 * [(S/p)^2, C*p*p], raster order, each row in (c, ky, kx) order: out · W^T with the Conv2d weight
 * W [D, C, p, p] viewed as [D, C*p*p] is the stride-p convolution (the patch embedding). */
void hp_cpu_im2col_patches(float *out, const float *img, int C, int S, int p);

#endif
