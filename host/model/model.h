/* model.h: a Llama/Mistral/Qwen2 decoder: its config, tokenizer, the table of its tensors and their
 * weights on a backend, and the forward pass over packed token batches with a KV cache, head
 * editing (alpha per head) and per-head residual capture. */
#ifndef HP_MODEL_H
#define HP_MODEL_H

#include "backend.h"
#include "config.h"
#include "store.h"
#include "tokenizer.h"

/* Roles of the decoder's tensors; one row each in the tensor table (model.c). */
typedef enum hp_role {
    HP_T_EMBED = 0,  /* [V, D] */
    HP_T_FINAL_NORM, /* [D] */
    HP_T_LM_HEAD,    /* [V, D]; absent when tied */
    HP_T_ATTN_NORM,  /* per layer [D] */
    HP_T_WQ,         /* [H*Dh, D] */
    HP_T_WK,         /* [KV*Dh, D] */
    HP_T_WV,         /* [KV*Dh, D] */
    HP_T_WO,         /* [D, H*Dh] */
    HP_T_FFN_NORM,   /* [D] */
    HP_T_W_GATE,     /* [F, D] */
    HP_T_W_UP,       /* [F, D] */
    HP_T_W_DOWN,     /* [D, F] */
    /* Optional biases (hp_role_needed says which a config has). */
    HP_T_BQ,         /* per layer [H*Dh] */
    HP_T_BK,         /* [KV*Dh] */
    HP_T_BV,         /* [KV*Dh] */
    HP_T_BO,         /* [D] */
    HP_T_B_GATE,     /* [F] */
    HP_T_B_UP,       /* [F] */
    HP_T_B_DOWN,     /* [D] */
    /* Gemma 3 only. */
    HP_T_Q_NORM,     /* per layer [Dh]: RMSNorm of every query head (before RoPE) */
    HP_T_K_NORM,     /* [Dh]: of every key head */
    HP_T_POST_ATTN_NORM, /* [D]: RMSNorm of the attention output (sum of the heads' o_proj) */
    HP_T_POST_FFN_NORM,  /* [D]: RMSNorm of the MLP output */
    HP_T_COUNT
} hp_role;

typedef struct hp_tensor_spec {
    hp_role role;
    int per_layer;
    const char *hf;    /* HF name (printf format with the layer index) */
    const char *gguf;  /* GGUF name */
    char dim[2];       /* 'V','D','Q' (H*Dh),'K' (KV*Dh),'F','h' (Dh), or 0 for a vector */
} hp_tensor_spec;

extern const hp_tensor_spec hp_tensor_table[HP_T_COUNT];
/* The tensor-name format of role r in a file of c's architecture (HF or GGUF): the table's,
 * except Gemma 3's HF pre-MLP norm (pre_feedforward_layernorm). */
const char *hp_tensor_name(const hp_config *c, hp_role r, int gguf);
/* Whether role r is an RMSNorm weight (Gemma's HF files store them as w of x·(1 + w)). */
int hp_role_is_norm(hp_role r);
/* Expected shape of a role under a config; returns ndim. */
int hp_tensor_shape(const hp_config *c, hp_role r, int64_t shape[2]);
/* Whether a model of this config has the tensor of role r (tied lm_head, optional biases). */
int hp_role_needed(const hp_config *c, hp_role r);

typedef struct hp_layer {
    void *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
    void *bq, *bk, *bv, *bo, *b_gate, *b_up, *b_down; /* NULL when the model has none */
    void *q_norm, *k_norm, *post_attn_norm, *post_ffn_norm; /* Gemma 3, else NULL */
} hp_layer;

typedef enum hp_chat_kind { HP_CHAT_NONE = 0, HP_CHAT_CHATML, HP_CHAT_MISTRAL, HP_CHAT_GEMMA } hp_chat_kind;

typedef struct hp_model {
    char *path;
    int is_gguf;
    hp_config cfg;
    hp_store store;
    hp_tokenizer *tok;      /* NULL when the directory has no tokenizer.json */
    hp_chat_kind chat;      /* the template the model expects */
    hp_backend *be;
    void *wblock;           /* the one allocation that holds every weight */
    size_t wblock_n;        /* its elements (HP_MEM_WEIGHT); bytes when wdt != NULL */
    /* [HP_T_COUNT * L] (role-major): the type each weight is held in on the backend: HP_F32
     * for the backend's HP_MEM_WEIGHT type, else its stored GGUF block type (be->keeps_dtype).
     * NULL when every weight is HP_MEM_WEIGHT. */
    hp_dtype *wdt;
    size_t wbytes;          /* bytes of weights on the backend */
    uint64_t n_params;
    hp_dtype file_dtype[HP_T_COUNT]; /* stored dtype per role (layer 0 for per-layer roles) */
    void *embed;            /* [V, D] */
    void *final_norm;       /* [D] */
    void *lm_head;          /* [V, D]; == embed when tied */
    hp_layer *layers;       /* L */
    void *rope_inv;         /* F32 [Dh/2]: the rotary pairs' inverse frequencies (own allocation) */
    void *rope_inv_local;   /* F32 [Dh/2]: those of Gemma 3's sliding layers; NULL otherwise */
    void *emb_scale;        /* F32 [1]: Gemma 3's embedding multiplier; NULL otherwise */
    float *alpha;           /* host [L*H]: head edit factors, 1 = unedited */
    int n_edited;
    char prefix[32];        /* tensor-name prefix of the language model ("language_model." in
                               LLaVA checkpoints, "" otherwise) */
    int is_llava;           /* config.json is a LlavaNextForConditionalGeneration */
} hp_model;

/* path: a directory with config.json (+ tokenizer.json) + safetensors, or a .gguf file. Every
 * tensor is checked against the config first. be == NULL: open and check only (no weights). */
hp_model *hp_model_load(const char *path, hp_backend *be, hp_err *e);
void hp_model_free(hp_model *m);
/* The named weight pointer of role r (layer l for per-layer roles). */
void **hp_model_slot(hp_model *m, hp_role r, int l);
/* The type the weight of role r (layer l) is held in on the backend (model.h: wdt). */
hp_dtype hp_model_wdt(const hp_model *m, hp_role r, int l);
/* y[T, N] = x[T, K] · W^T for the weight matrix of role r in layer l, whatever type it is held
 * in (be->matmul or be->matmul_q); f32: x and y are float32 (the lm_head), else activations. */
int hp_model_linear(hp_model *m, void *y, const void *x, hp_role r, int l, int T, int N, int K,
                    int f32);
/* Computes the rotary inverse frequencies of m->cfg (with a GGUF's rope_freqs.weight) into
 * m->rope_inv on m->be; hp_model_load and hp_model_random call it. */
int hp_model_init_rope(hp_model *m, hp_err *e);
/* Sets alpha for (layer, head); returns -1 if out of range. */
int hp_model_edit(hp_model *m, int layer, int head, float alpha, hp_err *e);
void hp_model_clear_edits(hp_model *m);

/* Working memory for forward passes: activations for up to Tmax tokens a call and a KV cache
 * of S sequence slots × Tcap positions. */
typedef struct hp_runtime {
    hp_model *m;
    int S, Tcap, Tmax, Bcap; /* Bcap: capture rows (sequences) */
    void *x, *xn, *q, *k, *v, *z, *o, *gate, *up; /* activations [Tmax, ...] */
    void **kc, **vc;                             /* per layer [S, Tcap, KV*Dh] */
    void *ids, *seq, *pos, *rows;                /* I32 [Tmax] */
    void *capw;                                  /* F32 [Tmax] */
    void *alpha;                                 /* F32 [L*H] */
    void *hrow;                                  /* F32 [Tmax, D] gathered final hidden rows */
    void *logits;                                /* F32 [Tmax, V] */
    void *cap;                                   /* F32 [Bcap, H, D] one layer's readout */
    void *wo_f32;  /* WEIGHT [D, H*Dh]: a kept o_proj dequantised for the readout; NULL if none */
} hp_runtime;

hp_runtime *hp_runtime_create(hp_model *m, int S, int Tcap, int Tmax, int Bcap, hp_err *e);
void hp_runtime_free(hp_runtime *rt);

/* One forward call over T packed tokens (any T: split into chunks of Tmax internally).
 * logit_rows (n_logits token indices into this call's tokens) -> logits_out [n_logits, V] host.
 * cap_w (T weights, NULL = no capture) -> cap_out host [cap_B, L, H, D], accumulated (zero it
 * before the first call); seq[t] < cap_B is the capture row of token t. */
typedef struct hp_fwd {
    int T;
    const int32_t *ids, *seq, *pos;
    /* Rows whose input embedding is given instead of looked up (image features): n_inject token
     * indices of this call and their [n_inject, D] float32 embeddings. */
    int n_inject;
    const int32_t *inject_rows;
    const float *inject;
    int n_logits;
    const int32_t *logit_rows;
    float *logits_out;
    const float *cap_w;
    int cap_B;
    float *cap_out;
    /* Start at layer start_layer (> 0) from the residual stream start_x [T, D] float32 entering
     * it, instead of at the embeddings (the KV cache of the layers below must hold what they
     * would have computed: hp_prefix). No capture then. */
    int start_layer;
    const float *start_x;
    /* Keep the residual stream entering each of the n_snap layers snap_layers (increasing, L =
     * after the last layer) in snap_out [n_snap, T, D] float32. */
    int n_snap;
    const int *snap_layers;
    float *snap_out;
} hp_fwd;

int hp_forward(hp_runtime *rt, const hp_fwd *f, hp_err *e);

/* Embeddings that replace the looked-up ones at some positions of a prompt (image features). */
typedef struct hp_inject {
    int n;
    const int32_t *pos;  /* n positions in the prompt */
    const float *emb;    /* [n, D] */
} hp_inject;

/* The unedited prefill of one batch of prompts, kept so that runs of the same prompts with
 * edits only in layers >= l start at l (edit sweeps: the controls share the SOMP heads' layers).
 * It holds the residual stream entering each of `layers` and the KV cache of the layers below
 * the highest; a run starts at the highest kept layer not above its lowest edited layer. The
 * results are bit-identical to the full prefill (same chunks, same operations, the same stored
 * values restored). */
#define HP_PREFIX_MAX_LAYERS 64
typedef struct hp_prefix {
    int n_layers, layers[HP_PREFIX_MAX_LAYERS]; /* increasing, each in [1, L] */
    int recorded, n_calls;                      /* prefill forward calls: 1, or 2 with a shared prefix */
    int T[2];                                   /* tokens of each call */
    float *x[2];                                /* per call [n_layers][T][D] */
    int Lk;                                     /* KV kept for layers [0, Lk) */
    size_t kv_n;                                /* S * Tcap * KVD per layer and cache */
    float *kv;                                  /* [Lk][2 (k, v)][kv_n] */
    uint64_t prompts;                           /* hash of the prompts and the runtime shape */
} hp_prefix;
/* layers: the candidate start layers (any order, duplicates and out-of-range values dropped). */
void hp_prefix_init(hp_prefix *p, const int *layers, int n, int L);
void hp_prefix_free(hp_prefix *p);

/* Greedy generation for B prompts (each ids[b], len[b] tokens) up to max_new tokens, stopping a
 * sequence at any EOS id unless no_eos. inj: NULL or B entries. out[b] (malloc'd) gets the new
 * ids, out_n[b] their count. progress: print a progress line on stderr. */
int hp_generate(hp_model *m, int B, const int32_t *const *ids, const int *len, const hp_inject *inj,
                int max_new, int no_eos, int32_t **out, int *out_n, int progress, hp_err *e);
/* hp_generate with a prefix kept across calls on the same prompts (pre: recorded on first use by
 * an extra unedited prefill; NULL: none) and the prefill's last-token logits [B, V] (NULL: not
 * wanted). A batch whose KV cache does not fit is refused rather than split when pre is given. */
int hp_generate_ex(hp_model *m, int B, const int32_t *const *ids, const int *len, const hp_inject *inj,
                   int max_new, int no_eos, int32_t **out, int *out_n, int progress, hp_prefix *pre,
                   float *prefill_logits, hp_err *e);

/* A model with random weights built from a config alone (no file, no tokenizer): the layout of
 * hp_model_load, values uniform with std 1/sqrt(fan-in) (norm weights 1 ± 0.05), the same for
 * the same seed on every backend (host/model/model_random.c). For benchmarks and tests. */
hp_model *hp_model_random(const hp_config *cfg, hp_backend *be, uint64_t seed, hp_err *e);
/* dst[0..n) = base + amp·u, u uniform in [-1, 1) from a hash of (seed, first + i): the same
 * values on any machine and thread count (OpenMP-parallel). The random models' generator. */
void hp_fill_uniform(float *dst, size_t n, uint64_t seed, uint64_t first, float base, float amp);

#endif
