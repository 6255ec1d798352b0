/* config.h: the decoder hyper-parameters, read from an HF config.json (MistralForCausalLM,
 * LlamaForCausalLM, Qwen2ForCausalLM) or from a GGUF file's llama.* / qwen2.* metadata. Unknown
 * architectures and unsupported rope_scaling are errors, never guesses. */
#ifndef HP_CONFIG_H
#define HP_CONFIG_H

#include "common.h"

struct hp_gguf;

typedef enum hp_arch { HP_ARCH_LLAMA = 0, HP_ARCH_MISTRAL = 1, HP_ARCH_QWEN2 = 2 } hp_arch;

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

#endif
