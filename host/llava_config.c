/* llava_config.c: the language-model half of a LlavaNextForConditionalGeneration config.json.
 * Checkpoints store only the text_config keys that differ from transformers' defaults for its
 * model_type, so the defaults are filled in before the decoder config is read. */
#include "llava.h"

#include <cJSON.h>

typedef struct kv_default {
    const char *key;
    double llama, mistral; /* NAN-free: every key has both defaults */
} kv_default;

/* transformers' LlamaConfig / MistralConfig defaults. */
static const kv_default text_defaults[] = {
    {"vocab_size", 32000, 32000},
    {"hidden_size", 4096, 4096},
    {"intermediate_size", 11008, 14336},
    {"num_hidden_layers", 32, 32},
    {"num_attention_heads", 32, 32},
    {"rms_norm_eps", 1e-6, 1e-6},
    {"rope_theta", 10000.0, 10000.0},
    {"max_position_embeddings", 2048, 131072},
};

int hp_llava_text_config(const struct cJSON *root, const char *path, hp_config *c, hp_err *e) {
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (!cJSON_IsObject(tc)) return hp_errf(e, "%s: LLaVA config without a 'text_config' object", path);
    cJSON *t = cJSON_Duplicate(tc, 1);
    if (!t) return hp_errf(e, "%s: out of memory", path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(t, "model_type");
    int mistral = !cJSON_IsString(mt) || !strcmp(mt->valuestring, "mistral");
    if (!cJSON_IsString(mt)) cJSON_AddStringToObject(t, "model_type", "llama"); /* HF's default */
    else if (strcmp(mt->valuestring, "mistral") && strcmp(mt->valuestring, "llama")) {
        cJSON_Delete(t);
        return hp_errf(e, "%s: text_config.model_type '%s' is not supported (llama, mistral)", path,
                       mt->valuestring);
    }
    if (!cJSON_IsString(mt)) mistral = 0;
    for (size_t i = 0; i < sizeof text_defaults / sizeof *text_defaults; i++)
        if (!cJSON_GetObjectItemCaseSensitive(t, text_defaults[i].key))
            cJSON_AddNumberToObject(t, text_defaults[i].key,
                                    mistral ? text_defaults[i].mistral : text_defaults[i].llama);
    if (mistral && !cJSON_GetObjectItemCaseSensitive(t, "num_key_value_heads"))
        cJSON_AddNumberToObject(t, "num_key_value_heads", 8);
    if (mistral && !cJSON_GetObjectItemCaseSensitive(t, "sliding_window"))
        cJSON_AddNumberToObject(t, "sliding_window", 4096);
    int rc = hp_config_from_cjson(t, path, c, e);
    cJSON_Delete(t);
    return rc;
}
