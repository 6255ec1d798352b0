/* llava_config.c: a LlavaNextForConditionalGeneration config.json: the language-model half
 * (text_config) and the vision half (vision_config, feature selection, anyres pinpoints, image
 * token, projector). Checkpoints store only the keys that differ from transformers' defaults, so
 * the defaults of transformers 4.46 are filled in for absent keys. */
#include "llava.h"

#include <cJSON.h>
#include <math.h>

#include "fileio.h"

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
        hp_errf(e, "%s: text_config.model_type '%s' is not supported (llama, mistral)", path,
                mt->valuestring); /* before freeing t, which holds the string */
        cJSON_Delete(t);
        return -1;
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

/* ---- the vision half ------------------------------------------------------------------------ */

/* An integer key, def when absent or null; messages name it as in the file (in: "vision_config."
 * or ""). */
static int v_int(const cJSON *o, const char *in, const char *key, int def, int *out, const char *path,
                 hp_err *e) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9)
        return hp_errf(e, "%s: %s%s must be an integer", path, in, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int v_act(const cJSON *o, const char *in, const char *key, hp_act def, hp_act *out,
                 const char *path, hp_err *e) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "gelu")) *out = HP_ACT_GELU;
    else if (cJSON_IsString(v) && !strcmp(v->valuestring, "quick_gelu")) *out = HP_ACT_QUICK_GELU;
    else
        return hp_errf(e, "%s: %s%s must be \"gelu\" or \"quick_gelu\" (others are not supported)",
                       path, in, key);
    return 0;
}

/* LlavaNextConfig's default image_grid_pinpoints, (height, width). */
static const int default_pinpoints[][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

int hp_llava_vision_config(const cJSON *root, const char *path, hp_llava_config *c, hp_err *e) {
    memset(c, 0, sizeof *c);
    /* LlavaForConditionalGeneration (LLaVA 1.5) has the same keys but no anyres packing */
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !(cJSON_IsString(mt) && !strcmp(mt->valuestring, "llava_next")))
        return hp_errf(e, "%s: model_type %s is not supported (llava_next)", path,
                       cJSON_IsString(mt) ? mt->valuestring : "(not a string)");
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(ar) ? cJSON_GetArrayItem(ar, 0) : NULL;
    if (ar && !cJSON_IsNull(ar) &&
        !(cJSON_IsString(a0) && !strcmp(a0->valuestring, "LlavaNextForConditionalGeneration")))
        return hp_errf(e, "%s: architectures %s is not supported (LlavaNextForConditionalGeneration)",
                       path, cJSON_IsString(a0) ? a0->valuestring : "(not a list of strings)");
    if (hp_config_no_pruned_heads(root, "", path, e)) return -1;
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    hp_clip_config *v = &c->vis;
    if (vc && !cJSON_IsNull(vc)) {
        if (!cJSON_IsObject(vc)) return hp_errf(e, "%s: 'vision_config' must be an object", path);
        mt = cJSON_GetObjectItemCaseSensitive(vc, "model_type");
        if (mt && !(cJSON_IsString(mt) && !strcmp(mt->valuestring, "clip_vision_model")))
            return hp_errf(e, "%s: vision_config.model_type %s%s%s is not supported (only "
                           "clip_vision_model)", path, cJSON_IsString(mt) ? "'" : "",
                           cJSON_IsString(mt) ? mt->valuestring : "(not a string)",
                           cJSON_IsString(mt) ? "'" : "");
        if (hp_config_no_pruned_heads(vc, "vision_config.", path, e)) return -1;
        /* CLIPVisionConfig's own defaults (ViT-B/32). */
        double eps = 1e-5;
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(vc, "layer_norm_eps");
        if (ev && !cJSON_IsNull(ev)) {
            if (!cJSON_IsNumber(ev) || !(ev->valuedouble > 0))
                return hp_errf(e, "%s: vision_config.layer_norm_eps must be a positive number", path);
            eps = ev->valuedouble;
        }
        v->eps = (float)eps;
        if (v_int(vc, "vision_config.", "hidden_size", 768, &v->D, path, e) ||
            v_int(vc, "vision_config.", "intermediate_size", 3072, &v->F, path, e) ||
            v_int(vc, "vision_config.", "num_hidden_layers", 12, &v->L, path, e) ||
            v_int(vc, "vision_config.", "num_attention_heads", 12, &v->H, path, e) ||
            v_int(vc, "vision_config.", "num_channels", 3, &v->C, path, e) ||
            v_int(vc, "vision_config.", "image_size", 224, &v->S, path, e) ||
            v_int(vc, "vision_config.", "patch_size", 32, &v->p, path, e) ||
            v_act(vc, "vision_config.", "hidden_act", HP_ACT_QUICK_GELU, &v->act, path, e))
            return -1;
    } else {
        /* No vision_config: LlavaNextConfig builds CLIP ViT-L/14-336. */
        *v = (hp_clip_config){.D = 1024, .F = 4096, .L = 24, .H = 16, .C = 3, .S = 336, .p = 14,
                              .eps = 1e-5f, .act = HP_ACT_QUICK_GELU};
    }
    if (v->D <= 0 || v->F <= 0 || v->L <= 0 || v->H <= 0 || v->C <= 0 || v->S <= 0 || v->p <= 0)
        return hp_errf(e, "%s: non-positive dimension in vision_config", path);
    if (v->D % v->H)
        return hp_errf(e, "%s: vision_config.hidden_size %d is not a multiple of num_attention_heads %d",
                       path, v->D, v->H);
    if (v->S % v->p)
        return hp_errf(e, "%s: vision_config.image_size %d is not a multiple of patch_size %d", path,
                       v->S, v->p);
    v->Dh = v->D / v->H;
    v->P = (v->S / v->p) * (v->S / v->p);
    v->N = v->P + 1;

    if (v_int(root, "", "vision_feature_layer", -2, &c->feature_layer, path, e) ||
        v_int(root, "", "image_token_index", 32000, &c->image_token, path, e) ||
        v_act(root, "", "projector_hidden_act", HP_ACT_GELU, &c->proj_act, path, e))
        return -1;
    /* hidden_states has L+1 entries: [0] the pre_layrnorm output, [k] encoder layer k's output;
     * negative indices count from the end, as in Python. */
    int hs = c->feature_layer < 0 ? v->L + 1 + c->feature_layer : c->feature_layer;
    if (hs < 0 || hs > v->L)
        return hp_errf(e, "%s: vision_feature_layer %d is outside CLIP's %d hidden states", path,
                       c->feature_layer, v->L + 1);
    c->feature_hs = hs;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "vision_feature_select_strategy");
    if (!st || cJSON_IsNull(st) || (cJSON_IsString(st) && !strcmp(st->valuestring, "default")))
        c->select_full = 0;
    else if (cJSON_IsString(st) && !strcmp(st->valuestring, "full"))
        c->select_full = 1;
    else
        return hp_errf(e, "%s: vision_feature_select_strategy must be \"default\" or \"full\"", path);
    c->P_sel = c->select_full ? v->N : v->P;
    const cJSON *pb = cJSON_GetObjectItemCaseSensitive(root, "multimodal_projector_bias");
    if (pb && !cJSON_IsNull(pb) && !cJSON_IsBool(pb))
        return hp_errf(e, "%s: multimodal_projector_bias must be true or false", path);
    c->proj_bias = !(pb && cJSON_IsFalse(pb));
    if (c->image_token < 0) return hp_errf(e, "%s: image_token_index %d is negative", path, c->image_token);

    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "image_grid_pinpoints");
    if (!pp || cJSON_IsNull(pp)) {
        c->n_pinpoints = (int)(sizeof default_pinpoints / sizeof *default_pinpoints);
        memcpy(c->pinpoints, default_pinpoints, sizeof default_pinpoints);
    } else {
        int n = cJSON_IsArray(pp) ? cJSON_GetArraySize(pp) : 0;
        if (n <= 0 || n > (int)(sizeof c->pinpoints / sizeof *c->pinpoints))
            return hp_errf(e, "%s: image_grid_pinpoints must be a list of 1..%d [height, width] pairs",
                           path, (int)(sizeof c->pinpoints / sizeof *c->pinpoints));
        int i = 0;
        for (const cJSON *it = pp->child; it; it = it->next, i++) {
            const cJSON *a = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(a) ||
                !cJSON_IsNumber(b) || a->valuedouble != floor(a->valuedouble) ||
                b->valuedouble != floor(b->valuedouble) || a->valuedouble < 1 || b->valuedouble < 1 ||
                a->valuedouble > 1e6 || b->valuedouble > 1e6)
                return hp_errf(e, "%s: image_grid_pinpoints[%d] is not a [height, width] pair of "
                               "positive integers", path, i);
            c->pinpoints[i][0] = (int)a->valuedouble;
            c->pinpoints[i][1] = (int)b->valuedouble;
        }
        c->n_pinpoints = n;
    }
    /* The model views the grid tiles as (height/S) x (width/S): a remainder cannot pack. */
    for (int i = 0; i < c->n_pinpoints; i++)
        if (c->pinpoints[i][0] % v->S || c->pinpoints[i][1] % v->S)
            return hp_errf(e, "%s: image_grid_pinpoints[%d] = [%d, %d]%s is not a multiple of "
                           "vision_config.image_size %d", path, i, c->pinpoints[i][0],
                           c->pinpoints[i][1], pp && !cJSON_IsNull(pp) ? "" : " (the default)", v->S);
    return 0;
}

/* ---- preprocessor_config.json (LlavaNextImageProcessor) ---------------------------------------- */

/* A JSON boolean key of the processor; def when absent or null. */
static int p_bool(const cJSON *o, const char *key, int def, int *out, const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return hp_errf(e, "%s: key '%s' must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* image_mean / image_std: three numbers, or one for every channel (as transformers allows). */
static int p_triple(const cJSON *o, const char *key, float out[3], int positive, const char *path,
                    hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    double d[3];
    if (cJSON_IsNumber(v)) {
        d[0] = d[1] = d[2] = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3) {
        for (int i = 0; i < 3; i++) {
            const cJSON *x = cJSON_GetArrayItem(v, i);
            if (!cJSON_IsNumber(x)) return hp_errf(e, "%s: key '%s' must hold numbers", path, key);
            d[i] = x->valuedouble;
        }
    } else {
        return hp_errf(e, "%s: key '%s' must be a list of 3 numbers (one per RGB channel)", path, key);
    }
    for (int i = 0; i < 3; i++) {
        if (!isfinite(d[i]) || (positive && !(d[i] > 0)))
            return hp_errf(e, "%s: key '%s' must hold finite%s numbers", path, key,
                           positive ? " positive" : "");
        out[i] = (float)d[i]; /* numpy's float32 array of them */
    }
    return 0;
}

/* A size dict: {"shortest_edge": n} for size, {"height": n, "width": n} (square) for crop_size,
 * or a bare integer (transformers' get_size_dict reads it the same way). */
static int p_size(const cJSON *o, const char *key, int crop, int *out, const char *path, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    double n = -1;
    if (cJSON_IsNumber(v)) {
        n = v->valuedouble;
    } else if (cJSON_IsObject(v) && !crop) {
        const cJSON *se = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge");
        if (!cJSON_IsNumber(se))
            return hp_errf(e, "%s: key '%s' must be {\"shortest_edge\": N} (a fixed height/width "
                              "resize is not supported)", path, key);
        n = se->valuedouble;
    } else if (cJSON_IsObject(v)) {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "height"),
                    *w = cJSON_GetObjectItemCaseSensitive(v, "width");
        if (!cJSON_IsNumber(h) || !cJSON_IsNumber(w))
            return hp_errf(e, "%s: key '%s' must be {\"height\": N, \"width\": N}", path, key);
        if (h->valuedouble != w->valuedouble)
            return hp_errf(e, "%s: key '%s' %gx%g is not square (tiles are square)", path, key,
                           w->valuedouble, h->valuedouble);
        n = h->valuedouble;
    }
    if (!(n >= 1 && n <= 4096 && n == floor(n)))
        return hp_errf(e, "%s: key '%s' must be a positive integer size (at most 4096)", path, key);
    *out = (int)n;
    return 0;
}

int hp_llava_proc_config(const char *dir, const hp_llava_config *c, hp_llava_proc_cfg *pc,
                         hp_err *e) {
    /* Without the file: llava-hf's processor (shortest edge = crop = the tower's image size). */
    hp_llava_proc_defaults(pc, c->vis.S, c->vis.p);
    pc->n_pinpoints = c->n_pinpoints;
    memcpy(pc->pinpoints, c->pinpoints, sizeof pc->pinpoints);
    char path[4096];
    if (hp_path_join(path, sizeof path, dir, "preprocessor_config.json"))
        return hp_errf(e, "%s: path too long", dir);
    if (!hp_file_exists(path)) return 0;
    cJSON *o = hp_read_json(path, e);
    if (!o) return -1;
    int rc = -1, flag;
    if (!cJSON_IsObject(o)) {
        hp_errf(e, "%s: not a JSON object", path);
        goto out;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "image_processor_type");
    if (ty && !(cJSON_IsString(ty) && !strcmp(ty->valuestring, "LlavaNextImageProcessor"))) {
        hp_errf(e, "%s: image_processor_type %s is not supported (LlavaNextImageProcessor)", path,
                cJSON_IsString(ty) ? ty->valuestring : "(not a string)");
        goto out;
    }
    /* A file that omits a key gets LlavaNextImageProcessor's own default for it (224 for both
     * sizes), as transformers does: not the tower's size. */
    pc->shortest_edge = pc->crop = 224;
    if (p_size(o, "size", 0, &pc->shortest_edge, path, e) ||
        p_size(o, "crop_size", 1, &pc->crop, path, e) ||
        p_triple(o, "image_mean", pc->mean, 0, path, e) ||
        p_triple(o, "image_std", pc->std, 1, path, e))
        goto out;
    if (pc->crop != c->vis.S) {
        hp_errf(e, "%s: crop_size %d differs from vision_config.image_size %d (the tower takes "
                   "image_size tiles)", path, pc->crop, c->vis.S);
        goto out;
    }
    if (pc->shortest_edge < pc->crop) {
        hp_errf(e, "%s: size.shortest_edge %d below crop_size %d (a padding centre crop) is not "
                   "supported", path, pc->shortest_edge, pc->crop);
        goto out;
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(o, "rescale_factor");
    if (rf && !cJSON_IsNull(rf)) {
        if (!cJSON_IsNumber(rf) || !(rf->valuedouble > 0) || !isfinite(rf->valuedouble)) {
            hp_errf(e, "%s: key 'rescale_factor' must be a positive number", path);
            goto out;
        }
        pc->rescale = rf->valuedouble;
    }
    /* do_rescale false leaves 0..255 (normalize converts to float32 as is); do_normalize false
     * is mean 0, std 1. */
    if (p_bool(o, "do_rescale", 1, &flag, path, e)) goto out;
    if (!flag) pc->rescale = 1.0;
    if (p_bool(o, "do_normalize", 1, &flag, path, e)) goto out;
    if (!flag)
        for (int i = 0; i < 3; i++) pc->mean[i] = 0.0f, pc->std[i] = 1.0f;
    /* Steps that cannot be turned off here: refused by name. do_pad only pads a batch's
     * tile counts (images run one at a time here), so either value is accepted. */
    static const char *const must_be_true[] = {"do_resize", "do_center_crop", "do_convert_rgb"};
    if (p_bool(o, "do_pad", 1, &flag, path, e)) goto out;
    for (size_t i = 0; i < sizeof must_be_true / sizeof *must_be_true; i++) {
        if (p_bool(o, must_be_true[i], 1, &flag, path, e)) goto out;
        if (!flag) {
            hp_errf(e, "%s: %s = false is not supported", path, must_be_true[i]);
            goto out;
        }
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "resample");
    if (rs && !cJSON_IsNull(rs) && !(cJSON_IsNumber(rs) && rs->valuedouble == 3)) {
        hp_errf(e, "%s: resample must be 3 (bicubic; others are not supported)", path);
        goto out;
    }
    /* The processor tiles with its own pinpoints, the model packs with config.json's: they must
     * agree, or the two halves of transformers disagree on the grid. */
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(o, "image_grid_pinpoints");
    if (pp && !cJSON_IsNull(pp)) {
        int n = cJSON_IsArray(pp) ? cJSON_GetArraySize(pp) : -1, same = n == c->n_pinpoints;
        for (int i = 0; same && i < n; i++) {
            const cJSON *it = cJSON_GetArrayItem(pp, i);
            const cJSON *a = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
            same = cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsNumber(a) &&
                   cJSON_IsNumber(b) && a->valuedouble == c->pinpoints[i][0] &&
                   b->valuedouble == c->pinpoints[i][1];
        }
        if (!same) {
            hp_errf(e, "%s: image_grid_pinpoints differ from config.json's (not supported)", path);
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}
