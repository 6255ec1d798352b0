/* config.c: decoder hyper-parameters from an HF config.json (LlamaForCausalLM,
 * MistralForCausalLM, Qwen2ForCausalLM; both the transformers 4.x keys and 5.x
 * "rope_parameters") or from a GGUF file's llama.* / qwen2.* metadata. Every key is
 * type-checked; defaults follow the HF config classes; anything the model code does not
 * implement (rope scaling, other architectures) is an error naming the file and the key. */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include <cJSON.h>

#include "fileio.h"
#include "gguf.h"
#include "ops_cpu.h"
#include "store.h"

/* ---- config.json ---------------------------------------------------------------------------- */

int hp_config_no_pruned_heads(const cJSON *o, const char *in, const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "pruned_heads");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsObject(v) && !v->child))
        return hp_errf(e, "%s: %spruned_heads (heads removed from the model) is not supported", path,
                       in);
    return 0;
}

/* An integer key: absent or null gives def (or an error when required). */
static int j_int(const cJSON *o, const char *key, int required, int def, int *out, const char *path,
                 hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return hp_errf(e, "%s: missing key '%s'", path, key);
        *out = def;
        return 0;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < INT_MIN || d > INT_MAX)
        return hp_errf(e, "%s: key '%s' must be an integer", path, key);
    *out = (int)d;
    return 0;
}

static int j_float(const cJSON *o, const char *key, int required, double def, double *out,
                   const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return hp_errf(e, "%s: missing key '%s'", path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return hp_errf(e, "%s: key '%s' must be a number", path, key);
    *out = v->valuedouble;
    return 0;
}

static int j_bool(const cJSON *o, const char *key, int def, int *out, const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return hp_errf(e, "%s: key '%s' must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A positive number inside the rope object `obj` (named key in messages), required. */
static int j_rope_num(const cJSON *obj, const char *key, const char *sub, double *out,
                      const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, sub);
    if (!v || cJSON_IsNull(v))
        return hp_errf(e, "%s: key '%s' of this rope type needs '%s'", path, key, sub);
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble))
        return hp_errf(e, "%s: key '%s.%s' must be a positive number", path, key, sub);
    *out = v->valuedouble;
    return 0;
}

/* rope_scaling (4.x) or rope_parameters (5.x, which also carries rope_theta): default, linear
 * and llama3 are implemented; every other type (dynamic, yarn, longrope, ...) is refused by
 * name. */
static int j_rope(const cJSON *o, const char *key, double *theta, hp_config *c, const char *path,
                  hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v)) return hp_errf(e, "%s: key '%s' must be an object or null", path, key);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(v, "rope_type");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(v, "type");
    const char *name = cJSON_IsString(ty) ? ty->valuestring : "(missing)";
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(v, "rope_theta");
    if (th) {
        if (!cJSON_IsNumber(th) || !(th->valuedouble > 0) || !isfinite(th->valuedouble))
            return hp_errf(e, "%s: key '%s.rope_theta' must be a positive number", path, key);
        *theta = th->valuedouble;
    }
    if (!strcmp(name, "default")) return 0;
    if (c->rope_type != HP_ROPE_DEFAULT)
        return hp_errf(e, "%s: both 'rope_scaling' and 'rope_parameters' set a rope type", path);
    double f, lo, hi, orig;
    if (!strcmp(name, "linear")) {
        if (j_rope_num(v, key, "factor", &f, path, e)) return -1;
        c->rope_type = HP_ROPE_LINEAR;
        c->rope_factor = (float)f;
        return 0;
    }
    if (!strcmp(name, "llama3")) {
        if (j_rope_num(v, key, "factor", &f, path, e) ||
            j_rope_num(v, key, "low_freq_factor", &lo, path, e) ||
            j_rope_num(v, key, "high_freq_factor", &hi, path, e) ||
            j_rope_num(v, key, "original_max_position_embeddings", &orig, path, e))
            return -1;
        if (orig != floor(orig) || orig > INT_MAX)
            return hp_errf(e, "%s: key '%s.original_max_position_embeddings' must be an integer",
                           path, key);
        /* the smooth band divides by high - low */
        if (!(hi > lo))
            return hp_errf(e, "%s: key '%s': high_freq_factor %g must exceed low_freq_factor %g",
                           path, key, hi, lo);
        c->rope_type = HP_ROPE_LLAMA3;
        c->rope_factor = (float)f;
        c->rope_low_freq = (float)lo;
        c->rope_high_freq = (float)hi;
        c->rope_orig_max_pos = (int)orig;
        return 0;
    }
    return hp_errf(e, "%s: unsupported %s type %s (default, linear, llama3)", path, key, name);
}

const char *hp_mlp_act_name(int act) {
    switch (act) {
    case HP_GLU_SILU: return "silu";
    case HP_GLU_GELU: return "gelu";
    case HP_GLU_GELU_TANH: return "gelu_pytorch_tanh";
    case HP_GLU_RELU: return "relu";
    }
    return "?";
}

/* The MLP activation under `key` (absent or null: def). transformers' ACT2FN names; "swish"
 * is its other name for silu. Every other activation is refused by name. */
static int j_act(const cJSON *o, const char *key, int def, int *out, const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = def;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return hp_errf(e, "%s: key '%s' must be a string", path, key);
    const char *a = v->valuestring;
    if (!strcmp(a, "silu") || !strcmp(a, "swish")) *out = HP_GLU_SILU;
    else if (!strcmp(a, "gelu")) *out = HP_GLU_GELU;
    else if (!strcmp(a, "gelu_pytorch_tanh")) *out = HP_GLU_GELU_TANH;
    else if (!strcmp(a, "relu")) *out = HP_GLU_RELU;
    else
        return hp_errf(e, "%s: unsupported %s '%s' (silu, gelu, gelu_pytorch_tanh, relu)", path,
                       key, a);
    return 0;
}

static int check_shapes(hp_config *c, const char *path, hp_err *e) {
    if (c->D <= 0 || c->L <= 0 || c->H <= 0 || c->KV <= 0 || c->F <= 0 || c->V <= 0 || c->Dh <= 0)
        return hp_errf(e, "%s: sizes must be positive (D %d, L %d, H %d, KV %d, Dh %d, F %d, V %d)",
                       path, c->D, c->L, c->H, c->KV, c->Dh, c->F, c->V);
    if (c->H % c->KV)
        return hp_errf(e, "%s: %d attention heads are not a multiple of %d key/value heads", path,
                       c->H, c->KV);
    if (c->Dh % 2)
        return hp_errf(e, "%s: head_dim %d is odd; rotary embeddings need pairs", path, c->Dh);
    if ((int64_t)c->H * c->Dh > INT_MAX) return hp_errf(e, "%s: H x head_dim overflows", path);
    if (!(c->rms_eps > 0)) return hp_errf(e, "%s: rms_norm_eps must be positive", path);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return hp_errf(e, "%s: rope_theta must be positive", path);
    if (c->sliding_window < 0) return hp_errf(e, "%s: sliding_window must be >= 0", path);
    return 0;
}

/* Gemma3TextConfig's own keys (transformers 4.50..4.5x): local/global layers (layer_types, or
 * the older sliding_window_pattern: every pattern-th layer global), their rope bases and window,
 * the query scale and the final logit soft-capping. Attention-logit soft-capping and
 * bidirectional attention are refused by name. Needs c->L, c->D, c->Dh. */
static int gemma3_keys(const cJSON *o, hp_config *c, const char *path, hp_err *e) {
    double local_theta, qpas, cap;
    int pattern, bidir;
    c->gemma = 1;
    if (j_float(o, "rope_local_base_freq", 0, 10000, &local_theta, path, e) ||
        j_float(o, "query_pre_attn_scalar", 0, 256, &qpas, path, e) ||
        j_int(o, "sliding_window", 0, 4096, &c->sliding_window, path, e) ||
        j_int(o, "sliding_window_pattern", 0, 6, &pattern, path, e) ||
        j_float(o, "final_logit_softcapping", 0, 0, &cap, path, e) ||
        j_bool(o, "use_bidirectional_attention", 0, &bidir, path, e))
        return -1;
    const cJSON *alc = cJSON_GetObjectItemCaseSensitive(o, "attn_logit_softcapping");
    if (alc && !cJSON_IsNull(alc))
        return hp_errf(e, "%s: attn_logit_softcapping is not supported (only null)", path);
    if (bidir)
        return hp_errf(e, "%s: use_bidirectional_attention = true is not supported", path);
    if (!(local_theta > 0)) return hp_errf(e, "%s: rope_local_base_freq must be positive", path);
    if (!(qpas > 0)) return hp_errf(e, "%s: query_pre_attn_scalar must be positive", path);
    if (cap < 0) return hp_errf(e, "%s: final_logit_softcapping must be >= 0", path);
    if (c->sliding_window <= 0) return hp_errf(e, "%s: sliding_window must be positive", path);
    if (c->L > HP_MAX_LAYERS)
        return hp_errf(e, "%s: %d layers, at most %d supported", path, c->L, HP_MAX_LAYERS);
    c->rope_local_theta = (float)local_theta;
    c->query_scale = (float)(1.0 / sqrt(qpas));
    c->final_softcap = (float)cap;
    c->emb_scale = (float)sqrt((double)c->D);
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(o, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->L)
            return hp_errf(e, "%s: key 'layer_types' must list %d layer types", path, c->L);
        for (int l = 0; l < c->L; l++) {
            const cJSON *v = cJSON_GetArrayItem(lt, l);
            if (cJSON_IsString(v) && !strcmp(v->valuestring, "sliding_attention"))
                c->layer_local[l] = 1;
            else if (!(cJSON_IsString(v) && !strcmp(v->valuestring, "full_attention")))
                return hp_errf(e, "%s: layer_types[%d] must be \"sliding_attention\" or "
                                  "\"full_attention\"", path, l);
        }
    } else {
        if (pattern <= 0) return hp_errf(e, "%s: sliding_window_pattern must be positive", path);
        for (int l = 0; l < c->L; l++) c->layer_local[l] = (l + 1) % pattern != 0;
    }
    return 0;
}

int hp_layer_window(const hp_config *c, int l) {
    if (c->arch == HP_ARCH_GEMMA3) return c->layer_local[l] ? c->sliding_window : 0;
    return c->sliding_window;
}

int hp_config_from_cjson(const cJSON *o, const char *path, hp_config *c, hp_err *e) {
    memset(c, 0, sizeof *c);
    c->rope_factor = 1;
    if (!cJSON_IsObject(o)) return hp_errf(e, "%s: config is not a JSON object", path);

    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(o, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "model_type");
    const char *an = NULL;
    if (cJSON_IsArray(archs) && cJSON_GetArraySize(archs) > 0) {
        const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
        if (!cJSON_IsString(a0))
            return hp_errf(e, "%s: key 'architectures' must hold strings", path);
        an = a0->valuestring;
    } else if (archs && !cJSON_IsNull(archs) && !cJSON_IsArray(archs)) {
        return hp_errf(e, "%s: key 'architectures' must be an array", path);
    } else if (cJSON_IsString(mt)) {
        if (!strcmp(mt->valuestring, "llama"))
            an = "LlamaForCausalLM";
        else if (!strcmp(mt->valuestring, "mistral"))
            an = "MistralForCausalLM";
        else if (!strcmp(mt->valuestring, "qwen2"))
            an = "Qwen2ForCausalLM";
        else if (!strcmp(mt->valuestring, "gemma3_text"))
            an = "Gemma3ForCausalLM";
        else
            return hp_errf(e, "%s: unsupported model_type '%s' (llama, mistral, qwen2, gemma3_text)",
                           path, mt->valuestring);
    } else {
        return hp_errf(e, "%s: missing key 'architectures' (or 'model_type')", path);
    }
    if (!strcmp(an, "LlamaForCausalLM"))
        c->arch = HP_ARCH_LLAMA;
    else if (!strcmp(an, "MistralForCausalLM"))
        c->arch = HP_ARCH_MISTRAL;
    else if (!strcmp(an, "Qwen2ForCausalLM"))
        c->arch = HP_ARCH_QWEN2;
    else if (!strcmp(an, "Gemma3ForCausalLM"))
        c->arch = HP_ARCH_GEMMA3;
    else
        return hp_errf(e,
                       "%s: unsupported architecture '%s' (LlamaForCausalLM, MistralForCausalLM, "
                       "Qwen2ForCausalLM, Gemma3ForCausalLM)",
                       path, an);
    snprintf(c->arch_name, sizeof c->arch_name, "%s", an);
    /* transformers' AutoModel builds the class of model_type: a disagreeing one is not a guess */
    static const char *const arch_mt[] = {[HP_ARCH_LLAMA] = "llama", [HP_ARCH_MISTRAL] = "mistral",
                                          [HP_ARCH_QWEN2] = "qwen2",
                                          [HP_ARCH_GEMMA3] = "gemma3_text"};
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, arch_mt[c->arch]))
        return hp_errf(e, "%s: model_type '%s' does not match architecture %s", path,
                       mt->valuestring, an);
    if (mt && !cJSON_IsNull(mt) && !cJSON_IsString(mt))
        return hp_errf(e, "%s: key 'model_type' must be a string", path);
    if (hp_config_no_pruned_heads(o, "", path, e)) return -1;

    double theta = 10000, eps;
    if (j_int(o, "hidden_size", 1, 0, &c->D, path, e) ||
        j_int(o, "num_hidden_layers", 1, 0, &c->L, path, e) ||
        j_int(o, "num_attention_heads", 1, 0, &c->H, path, e) ||
        j_int(o, "num_key_value_heads", 0, c->H, &c->KV, path, e) ||
        j_int(o, "intermediate_size", 1, 0, &c->F, path, e) ||
        j_int(o, "vocab_size", 1, 0, &c->V, path, e) ||
        j_int(o, "max_position_embeddings", 0, 0, &c->max_pos, path, e) ||
        j_float(o, "rms_norm_eps", 1, 0, &eps, path, e) ||
        j_float(o, "rope_theta", 0, 10000, &theta, path, e) ||
        j_bool(o, "tie_word_embeddings", c->arch == HP_ARCH_GEMMA3, &c->tie_embeddings, path, e) ||
        (c->arch == HP_ARCH_GEMMA3
             ? j_act(o, "hidden_activation", HP_GLU_GELU_TANH, &c->mlp_act, path, e)
             : j_act(o, "hidden_act", HP_GLU_SILU, &c->mlp_act, path, e)) ||
        (c->arch != HP_ARCH_QWEN2 && j_bool(o, "attention_bias", 0, &c->attn_bias, path, e)) ||
        (c->arch != HP_ARCH_QWEN2 && c->arch != HP_ARCH_GEMMA3 &&
         j_bool(o, "mlp_bias", 0, &c->mlp_bias, path, e)) ||
        j_rope(o, "rope_scaling", &theta, c, path, e) ||
        j_rope(o, "rope_parameters", &theta, c, path, e))
        return -1;
    if (c->H <= 0) return hp_errf(e, "%s: num_attention_heads must be positive", path);
    if (j_int(o, "head_dim", 0, c->arch == HP_ARCH_GEMMA3 ? 256 : c->D / c->H, &c->Dh, path, e))
        return -1;
    if (!cJSON_GetObjectItemCaseSensitive(o, "head_dim") && c->arch != HP_ARCH_GEMMA3 && c->D % c->H)
        return hp_errf(e, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                       c->D, c->H);
    /* Llama has no sliding window; HF ignores the key there. */
    if (c->arch == HP_ARCH_MISTRAL && j_int(o, "sliding_window", 0, 0, &c->sliding_window, path, e))
        return -1;
    c->rope_theta = (float)theta;
    c->rms_eps = (float)eps;
    if (c->arch == HP_ARCH_GEMMA3 && gemma3_keys(o, c, path, e)) return -1;
    if (c->arch == HP_ARCH_QWEN2) {
        /* Qwen2 always has q/k/v biases (no key says so) and no o_proj / MLP biases; its
         * sliding window applies only when use_sliding_window is true. */
        int sw;
        if (j_bool(o, "use_sliding_window", 0, &sw, path, e)) return -1;
        if (sw)
            return hp_errf(e, "%s: use_sliding_window = true is not supported (Qwen2's windowed "
                              "layers above max_window_layers)", path);
        c->attn_bias = 1;
        c->o_bias = 0;
        c->mlp_bias = 0;
    } else {
        /* Llama's attention_bias puts a bias on q/k/v_proj and on o_proj. */
        c->o_bias = c->attn_bias;
    }

    if (j_int(o, "bos_token_id", 0, -1, &c->bos_id, path, e)) return -1;
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    c->eos_id = -1;
    if (cJSON_IsArray(eos)) {
        int n = cJSON_GetArraySize(eos);
        if (n > (int)(sizeof c->eos_ids / sizeof c->eos_ids[0]))
            return hp_errf(e, "%s: key 'eos_token_id' lists %d ids, at most 8 supported", path, n);
        const cJSON *v;
        cJSON_ArrayForEach(v, eos) {
            double d = v->valuedouble;
            if (!cJSON_IsNumber(v) || d != floor(d) || d < 0 || d > INT_MAX)
                return hp_errf(e, "%s: key 'eos_token_id' must hold non-negative integers", path);
            c->eos_ids[c->n_eos++] = (int)d;
        }
        if (c->n_eos) c->eos_id = c->eos_ids[0];
    } else {
        if (j_int(o, "eos_token_id", 0, -1, &c->eos_id, path, e)) return -1;
        if (c->eos_id >= 0) c->eos_ids[c->n_eos++] = c->eos_id;
    }
    return check_shapes(c, path, e);
}

int hp_config_from_json(const char *path, hp_config *c, hp_err *e) {
    char *text;
    size_t len;
    memset(c, 0, sizeof *c);
    if (hp_read_file(path, &text, &len, e)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int rc;
    if (!root)
        rc = hp_errf(e, "%s: byte %zu: not valid JSON", path,
                     end && end >= text && end <= text + len ? (size_t)(end - text) : (size_t)0);
    else
        rc = hp_config_from_cjson(root, path, c, e);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---- GGUF metadata -------------------------------------------------------------------------- */

static int g_int(const hp_gguf *g, const char *key, int required, int def, int *out, hp_err *e) {
    int64_t v;
    if (!hp_gguf_get(g, key) && !required) {
        *out = def;
        return 0;
    }
    if (hp_gguf_get_int(g, key, &v, e)) return -1;
    if (v < INT_MIN || v > INT_MAX)
        return hp_errf(e, "%s: metadata key %s = %lld is out of range", g->path, key, (long long)v);
    *out = (int)v;
    return 0;
}

/* <arch>.rope.scaling.type: llama.cpp reads an absent type as "linear" and applies
 * rope.scaling.factor (or the older rope.scale_linear) when set; "none" never scales. Llama 3.1
 * scaling has no metadata: it is the rope_freqs.weight tensor (hp_config_from_gguf_store). */
static int gguf_rope(const hp_gguf *g, const char *arch, hp_config *c, hp_err *e) {
    char tkey[96], fkey[96], okey[96];
    snprintf(tkey, sizeof tkey, "%s.rope.scaling.type", arch);
    snprintf(fkey, sizeof fkey, "%s.rope.scaling.factor", arch);
    snprintf(okey, sizeof okey, "%s.rope.scale_linear", arch);
    const hp_gguf_kv *tk = hp_gguf_get(g, tkey);
    const char *rs = hp_gguf_get_str(g, tkey);
    if (tk && !rs) return hp_errf(e, "%s: metadata key %s must be a string", g->path, tkey);
    if (rs && !strcmp(rs, "none")) return 0;
    if (rs && strcmp(rs, "linear"))
        return hp_errf(e, "%s: unsupported rope_scaling type %s (none, linear; Llama 3 scaling "
                          "comes as the rope_freqs.weight tensor)", g->path, rs);
    const char *fk = hp_gguf_get(g, fkey) ? fkey : hp_gguf_get(g, okey) ? okey : NULL;
    double f = 0;
    if (fk && hp_gguf_get_float(g, fk, &f, e)) return -1;
    if (!isfinite(f) || f < 0)
        return hp_errf(e, "%s: metadata key %s = %g must be a positive number", g->path, fk, f);
    if (f != 0 && f != 1) { /* llama.cpp: 0 means unset */
        c->rope_type = HP_ROPE_LINEAR;
        c->rope_factor = (float)f;
    } else if (rs && !fk) {
        return hp_errf(e, "%s: rope_scaling type linear without a factor (%s)", g->path, fkey);
    }
    return 0;
}

/* Gemma 3 as llama.cpp runs it: GeGLU (tanh gelu), every 6th layer global and the others
 * windowed (attention.sliding_window), local rope base 10000 (or rope.freq_base_swa where a
 * converter wrote it), query scale head_dim^-1/2 except the 27B model's (hidden/heads)^-1/2,
 * final_logit_softcapping when present. The norm weights are stored as 1 + w already. */
static int gguf_gemma3(const hp_gguf *g, hp_config *c, hp_err *e) {
    double local = 10000, cap = 0;
    if (hp_gguf_get(g, "gemma3.rope.freq_base_swa") &&
        hp_gguf_get_float(g, "gemma3.rope.freq_base_swa", &local, e))
        return -1;
    if (hp_gguf_get(g, "gemma3.final_logit_softcapping") &&
        hp_gguf_get_float(g, "gemma3.final_logit_softcapping", &cap, e))
        return -1;
    if (hp_gguf_get(g, "gemma3.attn_logit_softcapping"))
        return hp_errf(e, "%s: gemma3.attn_logit_softcapping is not supported", g->path);
    if (c->sliding_window <= 0)
        return hp_errf(e, "%s: gemma3 needs attention.sliding_window", g->path);
    if (c->L > HP_MAX_LAYERS)
        return hp_errf(e, "%s: %d layers, at most %d supported", g->path, c->L, HP_MAX_LAYERS);
    if (!(local > 0) || cap < 0)
        return hp_errf(e, "%s: bad gemma3 rope.freq_base_swa %g or softcapping %g", g->path, local, cap);
    c->gemma = 1;
    c->mlp_act = HP_GLU_GELU_TANH;
    c->rope_local_theta = (float)local;
    c->final_softcap = (float)cap;
    c->emb_scale = (float)sqrt((double)c->D);
    int is27b = c->L == 62 && c->D == 5376; /* llama.cpp's LLM_TYPE_27B */
    c->query_scale = (float)(1.0 / sqrt(is27b ? (double)c->D / c->H : (double)c->Dh));
    for (int l = 0; l < c->L; l++) c->layer_local[l] = (l + 1) % 6 != 0;
    return 0;
}

int hp_config_from_gguf(const hp_gguf *g, hp_config *c, hp_err *e) {
    memset(c, 0, sizeof *c);
    c->rope_factor = 1;
    if (!g)
        return hp_errf(e, "hp_config_from_gguf: no GGUF metadata (store not opened from GGUF?)");
    const char *arch = hp_gguf_get_str(g, "general.architecture");
    if (!arch) return hp_errf(e, "%s: missing string metadata key general.architecture", g->path);
    /* Mistral GGUFs also say "llama": the layer layout is the same. */
    if (!strcmp(arch, "llama")) {
        c->arch = HP_ARCH_LLAMA;
        snprintf(c->arch_name, sizeof c->arch_name, "LlamaForCausalLM");
    } else if (!strcmp(arch, "qwen2")) {
        c->arch = HP_ARCH_QWEN2;
        snprintf(c->arch_name, sizeof c->arch_name, "Qwen2ForCausalLM");
    } else if (!strcmp(arch, "gemma3")) {
        c->arch = HP_ARCH_GEMMA3;
        snprintf(c->arch_name, sizeof c->arch_name, "Gemma3ForCausalLM");
    } else {
        return hp_errf(e, "%s: unsupported architecture '%s' (llama, qwen2, gemma3)", g->path, arch);
    }
    /* Hyper-parameters live under "<arch>.": K("x") is that key. */
    char kb[128];
#define K(suffix) (snprintf(kb, sizeof kb, "%s." suffix, arch), kb)

    double theta, eps;
    if (g_int(g, K("embedding_length"), 1, 0, &c->D, e) ||
        g_int(g, K("block_count"), 1, 0, &c->L, e) ||
        g_int(g, K("attention.head_count"), 1, 0, &c->H, e) ||
        g_int(g, K("attention.head_count_kv"), 0, c->H, &c->KV, e) ||
        g_int(g, K("feed_forward_length"), 1, 0, &c->F, e) ||
        g_int(g, K("context_length"), 0, 0, &c->max_pos, e) ||
        hp_gguf_get_float(g, K("attention.layer_norm_rms_epsilon"), &eps, e))
        return -1;
    if (!hp_gguf_get(g, K("rope.freq_base")))
        theta = 10000;
    else if (hp_gguf_get_float(g, K("rope.freq_base"), &theta, e))
        return -1;
    if (c->H <= 0) return hp_errf(e, "%s: %s must be positive", g->path, K("attention.head_count"));
    int has_kl = hp_gguf_get(g, K("attention.key_length")) != NULL;
    if (g_int(g, K("attention.key_length"), 0, c->D / c->H, &c->Dh, e)) return -1;
    if (!has_kl && c->D % c->H)
        return hp_errf(e, "%s: embedding_length %d is not a multiple of head_count %d", g->path,
                       c->D, c->H);
    int vl, rd;
    if (g_int(g, K("attention.value_length"), 0, c->Dh, &vl, e) ||
        g_int(g, K("rope.dimension_count"), 0, c->Dh, &rd, e))
        return -1;
    if (vl != c->Dh)
        return hp_errf(e, "%s: value_length %d != key_length %d is not supported", g->path, vl,
                       c->Dh);
    if (rd != c->Dh)
        return hp_errf(
            e, "%s: partial rotary (rope.dimension_count %d of head dim %d) is not supported",
            g->path, rd, c->Dh);
    if (gguf_rope(g, arch, c, e)) return -1;
    /* Mistral's window, where the converter wrote it (0 = none). */
    if (g_int(g, K("attention.sliding_window"), 0, 0, &c->sliding_window, e)) return -1;
    int V_meta = 0;
    if (g_int(g, K("vocab_size"), 0, 0, &V_meta, e)) return -1;
#undef K

    const hp_gguf_kv *tok = hp_gguf_get(g, "tokenizer.ggml.tokens");
    if (tok && tok->type == HP_GGUF_ARRAY) {
        if (tok->n > INT_MAX) return hp_errf(e, "%s: tokenizer.ggml.tokens is too long", g->path);
        c->V = (int)tok->n;
    } else if (V_meta > 0) {
        c->V = V_meta;
    } else {
        return hp_errf(e, "%s: no tokenizer.ggml.tokens and no vocab_size metadata", g->path);
    }
    if (g_int(g, "tokenizer.ggml.bos_token_id", 0, -1, &c->bos_id, e) ||
        g_int(g, "tokenizer.ggml.eos_token_id", 0, -1, &c->eos_id, e))
        return -1;
    if (c->eos_id >= 0) c->eos_ids[c->n_eos++] = c->eos_id;
    c->rope_theta = (float)theta;
    c->rms_eps = (float)eps;
    c->mlp_act = HP_GLU_SILU; /* llama, qwen2: SwiGLU (llama.cpp's graph for these) */
    if (c->arch == HP_ARCH_GEMMA3 && gguf_gemma3(g, c, e)) return -1;
    c->tie_embeddings = 0; /* decided by hp_config_from_gguf_store, which sees the tensors */
    return check_shapes(c, g->path, e);
}

int hp_config_from_gguf_store(const hp_store *s, hp_config *c, hp_err *e) {
    if (hp_config_from_gguf(s->gguf, c, e)) return -1;
    /* llama.cpp drops output.weight when the head shares the token embedding */
    c->tie_embeddings = hp_store_find(s, "output.weight") == NULL;
    /* Biases are not in the metadata: the layer-0 tensors say (the loader then requires them in
     * every layer). Qwen2 always has q/k/v biases. */
    c->attn_bias = c->arch == HP_ARCH_QWEN2 || hp_store_find(s, "blk.0.attn_q.bias") != NULL;
    c->o_bias = hp_store_find(s, "blk.0.attn_output.bias") != NULL;
    c->mlp_bias = hp_store_find(s, "blk.0.ffn_up.bias") != NULL;
    const hp_tensor *rf = hp_store_find(s, "rope_freqs.weight");
    if (rf) {
        if (rf->ndim != 1 || rf->shape[0] != c->Dh / 2)
            return hp_errf(e, "%s: tensor rope_freqs.weight must have shape [%d] (head_dim / 2)",
                           rf->file, c->Dh / 2);
        c->rope_freqs_tensor = 1;
    }
    return 0;
}

/* ---- rotary frequencies --------------------------------------------------------------------- */

int hp_rope_inv_freq_local(const hp_config *c, float *inv, hp_err *e) {
    hp_config l = *c;
    l.rope_theta = c->rope_local_theta;
    l.rope_type = HP_ROPE_DEFAULT;
    l.rope_freqs_tensor = 0;
    return hp_rope_inv_freq(&l, NULL, inv, e);
}

const char *hp_rope_type_name(hp_rope_type t) {
    switch (t) {
    case HP_ROPE_DEFAULT: return "default";
    case HP_ROPE_LINEAR: return "linear";
    case HP_ROPE_LLAMA3: return "llama3";
    }
    return "?";
}

/* float arithmetic step by step, as transformers does on float32 tensors (GCC contracts nothing
 * into FMAs in ISO C mode; clang is told). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

int hp_rope_inv_freq(const hp_config *c, const float *freq_factors, float *inv, hp_err *e) {
    int half = c->Dh / 2;
    if (c->Dh <= 0 || c->Dh % 2 || !(c->rope_theta > 0))
        return hp_errf(e, "rope: bad head_dim %d or theta %g", c->Dh, (double)c->rope_theta);
    if (c->rope_freqs_tensor && !freq_factors)
        return hp_errf(e, "rope: the model's rope_freqs.weight factors were not given");
    if (c->rope_type != HP_ROPE_DEFAULT && !(c->rope_factor > 0))
        return hp_errf(e, "rope: scaling factor %g must be positive", (double)c->rope_factor);
    for (int i = 0; i < half; i++) {
        float f = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->Dh));
        if (c->rope_type == HP_ROPE_LINEAR) {
            f = f / c->rope_factor;
        } else if (c->rope_type == HP_ROPE_LLAMA3) {
            /* _compute_llama3_parameters: wavelength 2pi/f against the original context */
            float factor = c->rope_factor, lo = c->rope_low_freq, hi = c->rope_high_freq;
            int old = c->rope_orig_max_pos;
            /* torch evaluates scalar / tensor as reciprocal(tensor) * scalar */
            float wavelen = (1.0f / f) * (float)(2 * M_PI);
            float lo_wavelen = (float)(old / (double)lo), hi_wavelen = (float)(old / (double)hi);
            if (wavelen > lo_wavelen) {
                f = f / factor;
            } else if (!(wavelen < hi_wavelen)) {
                float smooth = ((1.0f / wavelen) * (float)old - lo) / (float)((double)hi - lo);
                f = (1 - smooth) * f / factor + smooth * f;
            }
        }
        if (freq_factors) {
            if (!(freq_factors[i] > 0) || !isfinite(freq_factors[i]))
                return hp_errf(e, "rope: rope_freqs.weight[%d] = %g is not a positive number", i,
                               (double)freq_factors[i]);
            f = f / freq_factors[i];
        }
        inv[i] = f;
    }
    return 0;
}
