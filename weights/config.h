/* config.h: the decoder hyper-parameters, read from an HF config.json (MistralForCausalLM,
 * LlamaForCausalLM, Qwen2ForCausalLM) or from a GGUF file's llama.* / qwen2.* metadata. Unknown
 * architectures and unsupported rope_scaling are errors, never guesses. */
#ifndef HP_CONFIG_H
#define HP_CONFIG_H

#include "common.h"

struct hp_gguf;

typedef enum hp_arch {
    HP_ARCH_LLAMA = 0,
    HP_ARCH_MISTRAL = 1,
    HP_ARCH_QWEN2 = 2,
    HP_ARCH_GEMMA3 = 3, /* Gemma3ForCausalLM (gemma3_text): the text decoder of Gemma 3 */
} hp_arch;

#define HP_MAX_LAYERS 512 /* bound of hp_config.layer_local */

/* RoPE frequency scaling (HF rope_scaling / rope_parameters "rope_type"; GGUF rope.scaling.type). */
typedef enum hp_rope_type {
    HP_ROPE_DEFAULT = 0, /* inv_freq[i] = theta^(-2i/Dh) */
    HP_ROPE_LINEAR,      /* inv_freq / factor (position interpolation) */
    HP_ROPE_LLAMA3,      /* Llama 3.1: low frequencies / factor, high kept, a smooth band between */
} hp_rope_type;

typedef struct hp_config {
    hp_arch arch;
    char arch_name[64];   /* "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM" */
    int D;                /* hidden_size */
    int L;                /* num_hidden_layers */
    int H;                /* num_attention_heads */
    int KV;               /* num_key_value_heads (defaults to H) */
    int Dh;               /* head_dim (defaults to D / H) */
    int F;                /* intermediate_size */
    int V;                /* vocab_size */
    int max_pos;          /* max_position_embeddings (0 if absent) */
    float rope_theta;     /* default 10000 */
    float rms_eps;        /* rms_norm_eps */
    int sliding_window;   /* 0 = none (null / absent) */
    int tie_embeddings;   /* tie_word_embeddings (Llama default 0 in HF; GGUF: no output.weight) */
    int bos_id, eos_id;   /* -1 if absent; eos_id is the first if a list */
    int n_eos;            /* all eos ids (eos_token_id may be a list) */
    int eos_ids[8];
    /* Linear-layer biases: attn_bias = q/k/v_proj (Qwen2 always; Llama attention_bias),
     * o_bias = o_proj (Llama attention_bias; not attributed to any head), mlp_bias =
     * gate/up/down_proj (Llama mlp_bias). */
    int attn_bias, o_bias, mlp_bias;
    hp_rope_type rope_type;
    float rope_factor;      /* linear, llama3: "factor" (1 for default) */
    float rope_low_freq;    /* llama3: low_freq_factor */
    float rope_high_freq;   /* llama3: high_freq_factor */
    int rope_orig_max_pos;  /* llama3: original_max_position_embeddings */
    int mlp_act;            /* the gated MLP's act(gate)·up: HP_GLU_* of kernels/ops_cpu.h, from
                               hidden_act (silu, gelu, gelu_pytorch_tanh, relu); GGUF: by
                               architecture */
    /* Gemma 3 (all 0 for the other architectures). */
    int gemma;              /* embeddings × sqrt(D), RMSNorm x·(1 + w) (HF files; GGUF stores 1 + w),
                               q_norm/k_norm per head before RoPE, norms after attention and MLP */
    float emb_scale;        /* sqrt(D) as float32 (the dtype the weights run in here) */
    float query_scale;      /* query_pre_attn_scalar^-1/2 (attention otherwise scales Dh^-1/2) */
    float rope_local_theta; /* rope_local_base_freq: the base of the sliding-window layers (their
                               rope is never scaled; rope_type applies to global layers) */
    float final_softcap;    /* final_logit_softcapping: logits = cap·tanh(logits / cap); 0 = none */
    unsigned char layer_local[HP_MAX_LAYERS]; /* 1: sliding-window layer (Gemma 3 layer_types) */
    int rope_freqs_tensor;  /* GGUF: rope_freqs.weight [Dh/2] divides each pair's frequency (how
                               llama.cpp stores Llama 3.1 scaling) */
} hp_config;

int hp_config_from_json(const char *path, hp_config *c, hp_err *e);
/* The same from an already parsed JSON object (e.g. a LLaVA config's "text_config"); path only
 * names the file in messages. */
struct cJSON;
int hp_config_from_cjson(const struct cJSON *obj, const char *path, hp_config *c, hp_err *e);
/* Leaves tie_embeddings = 0: the metadata does not say; hp_config_from_gguf_store does. */
int hp_config_from_gguf(const struct hp_gguf *g, hp_config *c, hp_err *e);
/* hp_config_from_gguf on s->gguf, with tie_embeddings = 1 when s has no "output.weight" and the
 * bias flags from the layer-0 tensors present. */
struct hp_store;
int hp_config_from_gguf_store(const struct hp_store *s, hp_config *c, hp_err *e);

/* Refuses a non-empty "pruned_heads" in the config object o (in: "vision_config." or "" for
 * messages); transformers' PretrainedConfig key, which prunes heads at load. */
int hp_config_no_pruned_heads(const struct cJSON *o, const char *in, const char *path, hp_err *e);
/* The Dh/2 inverse frequencies of the rotary pairs (i, i + Dh/2) under c's rope scaling, as
 * transformers computes them (default: theta^(-2i/Dh) from a double pow, rounded to float).
 * freq_factors: GGUF's rope_freqs.weight [Dh/2] when c->rope_freqs_tensor, else NULL. */
int hp_rope_inv_freq(const hp_config *c, const float *freq_factors, float *inv, hp_err *e);
/* The same for Gemma 3's sliding-window layers: base rope_local_theta, no scaling. */
int hp_rope_inv_freq_local(const hp_config *c, float *inv, hp_err *e);
/* The attention window of layer l: c->sliding_window for Mistral (every layer) and Gemma 3's
 * sliding layers, 0 (causal, unbounded) otherwise. */
int hp_layer_window(const hp_config *c, int l);
/* "silu", "gelu", "gelu_pytorch_tanh" or "relu" (transformers' names). */
const char *hp_mlp_act_name(int act);
/* "default", "linear" or "llama3" (and " + rope_freqs" for a GGUF frequency tensor). */
const char *hp_rope_type_name(hp_rope_type t);

#endif
