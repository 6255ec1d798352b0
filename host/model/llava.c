/* llava.c: LLaVA-NeXT on top of the decoder: the vision tensor table and loader, the CLIP vision
 * tower (patch embedding as im2col + matmul, CLS and position embeddings, pre_layrnorm, pre-LN
 * encoder layers with biased non-causal attention and a quick_gelu MLP), the projector, anyres
 * packing with unpadding and image_newline (transformers' pack_image_features), and the prompt
 * with its image token expanded into injected feature rows.
 *
 * The vision side runs through hp_backend (lv->vbe): float32 CPU ops, or the CUDA kernels in
 * bf16 with cuBLAS products. Only the packing (a gather of rows plus image_newline) is on the
 * host, on the projector's float32 output. */
#include "llava.h"

#include "fileio.h"
#include "ops_cpu.h"

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the tensor table --------------------------------------------------------------------- */

#define VT "vision_tower.vision_model."
#define VL VT "encoder.layers.%d."
const hp_llava_tensor_spec hp_llava_tensor_table[HP_LV_COUNT] = {
    {HP_LV_PATCH, 0, VT "embeddings.patch_embedding.weight", {'D', 'C', 'p', 'p'}},
    {HP_LV_CLS, 0, VT "embeddings.class_embedding", {'D'}},
    {HP_LV_POS, 0, VT "embeddings.position_embedding.weight", {'N', 'D'}},
    {HP_LV_PRE_LN_W, 0, VT "pre_layrnorm.weight", {'D'}}, /* sic: HF's spelling */
    {HP_LV_PRE_LN_B, 0, VT "pre_layrnorm.bias", {'D'}},
    {HP_LV_LN1_W, 1, VL "layer_norm1.weight", {'D'}},
    {HP_LV_LN1_B, 1, VL "layer_norm1.bias", {'D'}},
    {HP_LV_WQ, 1, VL "self_attn.q_proj.weight", {'D', 'D'}},
    {HP_LV_BQ, 1, VL "self_attn.q_proj.bias", {'D'}},
    {HP_LV_WK, 1, VL "self_attn.k_proj.weight", {'D', 'D'}},
    {HP_LV_BK, 1, VL "self_attn.k_proj.bias", {'D'}},
    {HP_LV_WV, 1, VL "self_attn.v_proj.weight", {'D', 'D'}},
    {HP_LV_BV, 1, VL "self_attn.v_proj.bias", {'D'}},
    {HP_LV_WO, 1, VL "self_attn.out_proj.weight", {'D', 'D'}},
    {HP_LV_BO, 1, VL "self_attn.out_proj.bias", {'D'}},
    {HP_LV_LN2_W, 1, VL "layer_norm2.weight", {'D'}},
    {HP_LV_LN2_B, 1, VL "layer_norm2.bias", {'D'}},
    {HP_LV_FC1_W, 1, VL "mlp.fc1.weight", {'F', 'D'}},
    {HP_LV_FC1_B, 1, VL "mlp.fc1.bias", {'F'}},
    {HP_LV_FC2_W, 1, VL "mlp.fc2.weight", {'D', 'F'}},
    {HP_LV_FC2_B, 1, VL "mlp.fc2.bias", {'D'}},
    {HP_LV_PROJ1_W, 0, "multi_modal_projector.linear_1.weight", {'T', 'D'}},
    {HP_LV_PROJ1_B, 0, "multi_modal_projector.linear_1.bias", {'T'}},
    {HP_LV_PROJ2_W, 0, "multi_modal_projector.linear_2.weight", {'T', 'T'}},
    {HP_LV_PROJ2_B, 0, "multi_modal_projector.linear_2.bias", {'T'}},
    {HP_LV_NEWLINE, 0, "image_newline", {'T'}},
};
#undef VL
#undef VT

static int64_t dim_value(const hp_llava_config *c, char d) {
    switch (d) {
    case 'D': return c->vis.D;
    case 'F': return c->vis.F;
    case 'N': return c->vis.N;
    case 'C': return c->vis.C;
    case 'p': return c->vis.p;
    case 'T': return c->Dt;
    default: return 0;
    }
}

int hp_llava_tensor_shape(const hp_llava_config *c, hp_lv_role r, int64_t shape[4]) {
    const hp_llava_tensor_spec *s = &hp_llava_tensor_table[r];
    int nd = 0;
    while (nd < 4 && s->dim[nd]) {
        shape[nd] = dim_value(c, s->dim[nd]);
        nd++;
    }
    return nd;
}

static size_t role_elems(const hp_llava_config *c, hp_lv_role r) {
    int64_t shape[4];
    int nd = hp_llava_tensor_shape(c, r, shape);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)shape[i];
    return n;
}

static int role_needed(const hp_llava_config *c, hp_lv_role r) {
    return c->proj_bias || (r != HP_LV_PROJ1_B && r != HP_LV_PROJ2_B);
}

/* Layers of role r that exist in the checkpoint (all) and that are loaded (those the selected
 * hidden state depends on). */
static int role_layers(const hp_llava_config *c, hp_lv_role r, int loaded) {
    if (!hp_llava_tensor_table[r].per_layer) return 1;
    return loaded ? c->feature_hs : c->vis.L;
}

static void **role_slot(hp_llava *lv, hp_lv_role r, int l) {
    hp_clip_layer *y = lv->layers ? &lv->layers[l] : NULL;
    switch (r) {
    case HP_LV_PATCH: return &lv->patch_w;
    case HP_LV_CLS: return &lv->cls;
    case HP_LV_POS: return &lv->pos;
    case HP_LV_PRE_LN_W: return &lv->pre_ln_w;
    case HP_LV_PRE_LN_B: return &lv->pre_ln_b;
    case HP_LV_LN1_W: return &y->ln1_w;
    case HP_LV_LN1_B: return &y->ln1_b;
    case HP_LV_WQ: return &y->wq;
    case HP_LV_BQ: return &y->bq;
    case HP_LV_WK: return &y->wk;
    case HP_LV_BK: return &y->bk;
    case HP_LV_WV: return &y->wv;
    case HP_LV_BV: return &y->bv;
    case HP_LV_WO: return &y->wo;
    case HP_LV_BO: return &y->bo;
    case HP_LV_LN2_W: return &y->ln2_w;
    case HP_LV_LN2_B: return &y->ln2_b;
    case HP_LV_FC1_W: return &y->fc1_w;
    case HP_LV_FC1_B: return &y->fc1_b;
    case HP_LV_FC2_W: return &y->fc2_w;
    case HP_LV_FC2_B: return &y->fc2_b;
    case HP_LV_PROJ1_W: return &lv->proj1_w;
    case HP_LV_PROJ1_B: return &lv->proj1_b;
    case HP_LV_PROJ2_W: return &lv->proj2_w;
    case HP_LV_PROJ2_B: return &lv->proj2_b;
    case HP_LV_NEWLINE: return &lv->newline;
    default: return NULL;
    }
}

static void fmt_shape(char *buf, size_t cap, const int64_t *shape, int nd) {
    buf[0] = 0;
    for (int i = 0; i < nd; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%lld", i ? "," : "", (long long)shape[i]);
}

/* The tensor of role r in layer l, its shape and dtype checked against the config. */
static const hp_tensor *find_checked(const hp_llava *lv, hp_lv_role r, int l, hp_err *e) {
    const hp_model *m = lv->m;
    char name[256];
    snprintf(name, sizeof name, hp_llava_tensor_table[r].hf, l);
    const hp_tensor *t = hp_store_find(&m->store, name);
    if (!t) {
        hp_errf(e, "%s: missing tensor %s", m->path, name);
        return NULL;
    }
    int64_t shape[4];
    int nd = hp_llava_tensor_shape(&lv->cfg, r, shape);
    int ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96], want[96];
        fmt_shape(got, sizeof got, t->shape, t->ndim);
        fmt_shape(want, sizeof want, shape, nd);
        hp_errf(e, "%s: tensor %s has shape [%s] but the config implies [%s]", t->file, name, got, want);
        return NULL;
    }
    if (t->dt != HP_F32 && t->dt != HP_F16 && t->dt != HP_BF16) {
        hp_errf(e, "%s: tensor %s has dtype %s (expected F32, F16 or BF16)", t->file, name,
                hp_dtype_name(t->dt));
        return NULL;
    }
    return t;
}

/* Checks every vision tensor (every layer, used or not) before anything is allocated. */
static int check_tensors(hp_llava *lv, hp_err *e) {
    lv->n_params = 0;
    lv->wblock_n = 0;
    for (int r = 0; r < HP_LV_COUNT; r++) {
        if (!role_needed(&lv->cfg, r)) continue;
        for (int l = 0; l < role_layers(&lv->cfg, r, 0); l++) {
            const hp_tensor *t = find_checked(lv, r, l, e);
            if (!t) return -1;
            if (r == HP_LV_PATCH) lv->file_dtype = t->dt;
        }
        lv->n_params += (uint64_t)role_elems(&lv->cfg, r) * role_layers(&lv->cfg, r, 0);
        lv->wblock_n += role_elems(&lv->cfg, r) * role_layers(&lv->cfg, r, 1);
    }
    return 0;
}

/* The vision side's activations on vbe, one buffer per role, grown on demand and kept for the
 * next image (a capture or an eval runs thousands of images: no allocation per image). cudaFree
 * synchronises the device, so a buffer is never freed under queued work that reads it. */
enum { WS_X, WS_XN, WS_Q, WS_K, WS_V, WS_Z, WS_H, WS_COLS, WS_IMG, WS_SEL, WS_PH, WS_OUT, WS_COUNT };
struct hp_llava_ws {
    void *p[WS_COUNT];
    size_t cap[WS_COUNT];
};

static void ws_free(hp_llava *lv) {
    if (!lv->ws) return;
    for (int i = 0; i < WS_COUNT; i++)
        if (lv->ws->p[i]) lv->vbe->free(lv->vbe, lv->ws->p[i]);
    free(lv->ws);
    lv->ws = NULL;
}

/* Random values for role r (hp_llava_random): matrices uniform with standard deviation
 * 1/sqrt(fan-in) (activations keep unit scale), LayerNorm weights 1 ± 0.05, biases, CLS,
 * positions and image_newline ± 0.02·sqrt(3). Element i is a hash of (seed, role, layer, i): hp_fill_uniform. */
static void fill_random(const hp_llava_config *c, hp_lv_role r, int l, uint64_t seed, float *dst, size_t n) {
    int64_t shape[4];
    int nd = hp_llava_tensor_shape(c, r, shape);
    size_t fan_in = 1;
    for (int i = 1; i < nd; i++) fan_in *= (size_t)shape[i];
    int is_ln = r == HP_LV_PRE_LN_W || r == HP_LV_LN1_W || r == HP_LV_LN2_W;
    float base = is_ln ? 1.0f : 0.0f;
    float amp = is_ln ? 0.05f : nd >= 2 && r != HP_LV_POS ? (float)sqrt(3.0 / (double)fan_in) : 0.0346f;
    hp_fill_uniform(dst, n, seed ^ (0x11a7a11a7ull + ((uint64_t)r << 40) + ((uint64_t)l << 20)), 0,
                    base, amp);
}

/* Every needed tensor converted to float32 on the host (one staging buffer of the largest role)
 * and uploaded into one HP_MEM_WEIGHT block on vbe; image_newline also kept on the host. With
 * random set, values from fill_random(seed) instead of the checkpoint. */
static int load_weights(hp_llava *lv, hp_backend *vbe, int random, uint64_t seed, hp_err *e) {
    size_t most = 0;
    for (int r = 0; r < HP_LV_COUNT; r++)
        if (role_needed(&lv->cfg, r) && role_elems(&lv->cfg, r) > most) most = role_elems(&lv->cfg, r);
    float *stage = malloc(most * sizeof(float));
    lv->newline_host = malloc((size_t)lv->cfg.Dt * sizeof(float));
    if (!stage || !lv->newline_host) {
        free(stage);
        return hp_errf(e, "%s: out of memory for the vision weights (%zu floats)", lv->m->path, most);
    }
    lv->wblock = vbe->alloc(vbe, lv->wblock_n, HP_MEM_WEIGHT, e);
    if (!lv->wblock) {
        free(stage);
        return -1;
    }
    lv->vbe = vbe;
    if (!(lv->ws = calloc(1, sizeof *lv->ws))) {
        free(stage);
        return hp_errf(e, "%s: out of memory", lv->m->path);
    }
    size_t off = 0;
    int rc = 0;
    for (int r = 0; r < HP_LV_COUNT && !rc; r++) {
        if (!role_needed(&lv->cfg, r)) continue;
        size_t n = role_elems(&lv->cfg, r);
        for (int l = 0; l < role_layers(&lv->cfg, r, 1) && !rc; l++) {
            void *dst = vbe->offset(vbe, lv->wblock, off, HP_MEM_WEIGHT);
            if (random) {
                fill_random(&lv->cfg, r, l, seed, stage, n);
            } else {
                const hp_tensor *t = find_checked(lv, r, l, e);
                rc = !t || hp_tensor_to_f32(t, stage, e);
            }
            rc = rc || vbe->upload(vbe, dst, stage, n, HP_MEM_WEIGHT, e);
            if (!rc && r == HP_LV_NEWLINE) memcpy(lv->newline_host, stage, n * sizeof(float));
            *role_slot(lv, r, l) = dst;
            off += n;
        }
    }
    free(stage);
    return rc ? -1 : vbe->sync(vbe, e);
}

/* A random model's image processor (it has no preprocessor_config.json): llava-hf's defaults
 * (shortest edge = crop = the tile side, CLIP's normalisation) with the config's pinpoints. */
static void fill_proc(hp_llava *lv) {
    hp_llava_proc_defaults(&lv->proc, lv->cfg.vis.S, lv->cfg.vis.p);
    lv->proc.n_pinpoints = lv->cfg.n_pinpoints;
    memcpy(lv->proc.pinpoints, lv->cfg.pinpoints, sizeof lv->proc.pinpoints);
}

hp_llava *hp_llava_load(const char *dir, hp_backend *be, hp_err *e) {
    return hp_llava_open(dir, be, be, e);
}

hp_llava *hp_llava_open(const char *dir, hp_backend *be, hp_backend *vis_be, hp_err *e) {
    char path[4096];
    if (!hp_is_dir(dir)) {
        hp_errf(e, "%s: not a directory (a LLaVA-NeXT model is a directory with config.json and "
                   "safetensors)", dir);
        return NULL;
    }
    if (hp_path_join(path, sizeof path, dir, "config.json")) {
        hp_errf(e, "%s: path too long", dir);
        return NULL;
    }
    hp_llava *lv = calloc(1, sizeof *lv);
    if (!lv) {
        hp_errf(e, "%s: out of memory", dir);
        return NULL;
    }
    cJSON *root = hp_read_json(path, e);
    if (!root) goto fail;
    int rc = cJSON_GetObjectItemCaseSensitive(root, "text_config")
                 ? hp_llava_vision_config(root, path, &lv->cfg, e)
                 : hp_errf(e, "%s: not a LLaVA-NeXT config (no 'text_config')", path);
    cJSON_Delete(root);
    if (rc) goto fail;
    lv->m = hp_model_load(dir, be, e);
    if (!lv->m) goto fail;
    lv->cfg.Dt = lv->m->cfg.D;
    if (lv->cfg.image_token >= lv->m->cfg.V) {
        hp_errf(e, "%s: image_token_index %d is outside the text vocabulary (%d)", path,
                lv->cfg.image_token, lv->m->cfg.V);
        goto fail;
    }
    lv->layers = calloc((size_t)lv->cfg.vis.L, sizeof *lv->layers);
    if (!lv->layers) {
        hp_errf(e, "%s: out of memory", dir);
        goto fail;
    }
    if (hp_llava_proc_config(dir, &lv->cfg, &lv->proc, e)) goto fail;
    if (check_tensors(lv, e)) goto fail;
    if (vis_be && load_weights(lv, vis_be, 0, 0, e)) goto fail;
    return lv;
fail:
    hp_llava_free(lv);
    return NULL;
}

void hp_llava_free(hp_llava *lv) {
    if (!lv) return;
    ws_free(lv);
    hp_model_free(lv->m);
    if (lv->wblock) lv->vbe->free(lv->vbe, lv->wblock);
    free(lv->newline_host);
    free(lv->layers);
    free(lv);
}

hp_llava *hp_llava_random(const hp_llava_config *vc, const hp_config *text, hp_backend *be,
                          uint64_t seed, hp_err *e) {
    const hp_clip_config *v = &vc->vis;
    if (!be) {
        hp_errf(e, "random LLaVA: no backend");
        return NULL;
    }
    if (v->D <= 0 || v->H <= 0 || v->D % v->H || v->Dh != v->D / v->H || v->F <= 0 || v->C <= 0 ||
        v->p <= 0 || v->S < v->p || v->P != (v->S / v->p) * (v->S / v->p) || v->N != v->P + 1 ||
        vc->feature_hs < 0 || vc->feature_hs > v->L || vc->n_pinpoints < 1 || vc->select_full) {
        hp_errf(e, "random LLaVA: invalid vision config (D=%d H=%d Dh=%d S=%d p=%d P=%d N=%d, feature "
                   "layer %d of %d, %d pinpoints)", v->D, v->H, v->Dh, v->S, v->p, v->P, v->N,
                vc->feature_hs, v->L, vc->n_pinpoints);
        return NULL;
    }
    hp_llava *lv = calloc(1, sizeof *lv);
    if (!lv) {
        hp_errf(e, "random LLaVA: out of memory");
        return NULL;
    }
    lv->cfg = *vc;
    lv->m = hp_model_random(text, be, seed, e);
    if (!lv->m) goto fail;
    lv->cfg.Dt = lv->m->cfg.D;
    lv->cfg.P_sel = v->P;
    if (lv->cfg.image_token < 0 || lv->cfg.image_token >= lv->m->cfg.V) {
        hp_errf(e, "random LLaVA: image_token_index %d is outside the text vocabulary (%d)",
                lv->cfg.image_token, lv->m->cfg.V);
        goto fail;
    }
    lv->layers = calloc((size_t)v->L, sizeof *lv->layers);
    if (!lv->layers) {
        hp_errf(e, "random LLaVA: out of memory");
        goto fail;
    }
    fill_proc(lv);
    lv->file_dtype = HP_F32;
    for (int r = 0; r < HP_LV_COUNT; r++) {
        if (!role_needed(&lv->cfg, r)) continue;
        lv->n_params += (uint64_t)role_elems(&lv->cfg, r) * role_layers(&lv->cfg, r, 0);
        lv->wblock_n += role_elems(&lv->cfg, r) * role_layers(&lv->cfg, r, 1);
    }
    if (load_weights(lv, be, 1, seed, e)) goto fail;
    return lv;
fail:
    hp_llava_free(lv);
    return NULL;
}

static const char *act_name(hp_act a) { return a == HP_ACT_GELU ? "gelu" : "quick_gelu"; }

void hp_llava_print_info(const hp_llava *lv, FILE *f) {
    const hp_llava_config *c = &lv->cfg;
    const hp_clip_config *v = &c->vis;
    fprintf(f, "vision: CLIP D %d, L %d, H %d (Dh %d), F %d, %s, image %d, patch %d (%d positions), "
               "eps %g, %s\n", v->D, v->L, v->H, v->Dh, v->F, act_name(v->act), v->S, v->p, v->N,
            (double)v->eps, hp_dtype_name(lv->file_dtype));
    fprintf(f, "features: hidden_states[%d] (vision_feature_layer %d: %d of %d layers run), %s, "
               "%d rows per tile\n", c->feature_hs, c->feature_layer, c->feature_hs, v->L,
            c->select_full ? "full (with CLS)" : "default (CLS dropped)", c->P_sel);
    fprintf(f, "projector: Linear(%d->%d)%s - %s - Linear(%d->%d); image token %d; pinpoints",
            v->D, c->Dt, c->proj_bias ? "" : " no bias", act_name(c->proj_act), c->Dt, c->Dt,
            c->image_token);
    for (int i = 0; i < c->n_pinpoints; i++) fprintf(f, " %dx%d", c->pinpoints[i][0], c->pinpoints[i][1]);
    fprintf(f, "\nvision + projector parameters: %llu (%.1fM)\n", (unsigned long long)lv->n_params,
            lv->n_params / 1e6);
    for (int r = 0; r < HP_LV_COUNT; r++) {
        if (!role_needed(c, r)) continue;
        int64_t shape[4];
        char s[96];
        fmt_shape(s, sizeof s, shape, hp_llava_tensor_shape(c, r, shape));
        char name[256]; /* the layer index shown as N */
        const char *fmt = hp_llava_tensor_table[r].hf, *d = strstr(fmt, "%d");
        if (d) snprintf(name, sizeof name, "%.*sN%s", (int)(d - fmt), fmt, d + 2);
        else snprintf(name, sizeof name, "%s", fmt);
        fprintf(f, "  %-66s [%s]%s\n", name, s, d ? " per layer" : "");
    }
}

/* ---- anyres geometry ---------------------------------------------------------------------- */

/* transformers' select_best_resolution: the pinpoint that keeps the most of the image's pixels
 * after an aspect-preserving fit, then the one that wastes the least; the first on ties. */
static int best_resolution(const hp_llava_config *c, int h, int w) {
    int best = 0;
    long long max_eff = 0;
    double min_waste = HUGE_VAL;
    for (int i = 0; i < c->n_pinpoints; i++) {
        int ph = c->pinpoints[i][0], pw = c->pinpoints[i][1];
        double sw = (double)pw / w, sh = (double)ph / h, scale = sw < sh ? sw : sh;
        long long dw = (long long)(w * scale), dh = (long long)(h * scale);
        long long eff = dw * dh < (long long)w * h ? dw * dh : (long long)w * h;
        double waste = (double)((long long)pw * ph - eff);
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            max_eff = eff;
            min_waste = waste;
            best = i;
        }
    }
    return best;
}

/* Unpadding as modeling_llava_next.unpad_image: the padded side is cut back to the original
 * aspect, the kept length rounded down, the same padding removed at both ends. The kept length is
 * the exact floor (h * cw) // w: transformers 4.46 computes int(h * (cw / w)) in floats, one short
 * where the exact value is an integer the division rounds below (its processor then counts one
 * more row and the model raises a token/feature mismatch); later transformers round to 7 digits
 * first, which is this floor. So this equals 4.46 wherever 4.46 works, and later versions
 * everywhere (and llava_proc's hp_llava_num_image_tokens). */
static void unpad(int orig_h, int orig_w, int cur_h, int cur_w, int *r0, int *c0, int *uh, int *uw) {
    *r0 = *c0 = 0;
    *uh = cur_h;
    *uw = cur_w;
    if ((int64_t)orig_w * cur_h > (int64_t)cur_w * orig_h) { /* wider than the grid */
        int new_h = (int)((int64_t)orig_h * cur_w / orig_w);
        int pad = (cur_h - new_h) / 2;
        *r0 = pad;
        *uh = cur_h - 2 * pad;
    } else {
        int new_w = (int)((int64_t)orig_w * cur_h / orig_h);
        int pad = (cur_w - new_w) / 2;
        *c0 = pad;
        *uw = cur_w - 2 * pad;
    }
}

static int geometry(const hp_llava *lv, int orig_h, int orig_w, int *n_tiles, int *gh, int *gw,
                    int *r0, int *c0, int *uh, int *uw, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    if (orig_h <= 0 || orig_w <= 0) return hp_errf(e, "image size %dx%d is empty", orig_h, orig_w);
    int b = best_resolution(c, orig_h, orig_w);
    *gh = c->pinpoints[b][0] / c->vis.S;
    *gw = c->pinpoints[b][1] / c->vis.S;
    *n_tiles = 1 + *gh * *gw;
    int side = c->vis.S / c->vis.p;
    unpad(orig_h, orig_w, *gh * side, *gw * side, r0, c0, uh, uw);
    return c->P_sel + *uh * (*uw + 1);
}

int hp_llava_geometry(const hp_llava *lv, int orig_h, int orig_w, int *n_tiles, int *gh, int *gw,
                      int *uh, int *uw, hp_err *e) {
    int r0, c0;
    return geometry(lv, orig_h, orig_w, n_tiles, gh, gw, &r0, &c0, uh, uw, e);
}

/* ---- the vision tower --------------------------------------------------------------------- */

static float *falloc(size_t a, size_t b, hp_err *e) {
    size_t n;
    float *p = hp_mul_ok(a, b, &n) && hp_mul_ok(n, sizeof(float), &n) ? malloc(n) : NULL;
    if (!p) hp_errf(e, "out of memory (%zu x %zu floats)", a, b);
    return p;
}

/* An op returned nonzero: the backend's pending error (sync hands it over) or, if it has none
 * (the CPU ops' out-of-memory), what. */
static int op_failed(hp_backend *be, hp_err *e, const char *what) {
    if (be->sync(be, e)) return -1;
    return hp_errf(e, "%s: %s failed (out of memory?)", be->name, what);
}
#define OP(call, what)                                                                            \
    do {                                                                                          \
        if ((call) != 0) return op_failed(be, e, what);                                           \
    } while (0)

/* Buffer `slot` with room for a x b elements (HP_MEM_F32 for the pixels, else activations). */
static void *ws_get(const hp_llava *lv, int slot, size_t a, size_t b, hp_err *e) {
    hp_backend *be = lv->vbe;
    struct hp_llava_ws *w = lv->ws;
    size_t n;
    if (!hp_mul_ok(a, b, &n)) {
        hp_errf(e, "%s: vision buffer of %zu x %zu elements overflows", be->name, a, b);
        return NULL;
    }
    if (w->p[slot] && w->cap[slot] >= n) return w->p[slot];
    if (w->p[slot]) be->free(be, w->p[slot]);
    w->p[slot] = be->alloc(be, n, slot == WS_IMG ? HP_MEM_F32 : HP_MEM_ACT, e);
    w->cap[slot] = w->p[slot] ? n : 0;
    return w->p[slot];
}

/* One tower run's activations (workspace slots WS_X .. WS_IMG). */
typedef struct vis_bufs {
    void *x, *xn, *q, *k, *v, *z, *h, *cols, *img;
} vis_bufs;

/* y[T, N] = x[T, K] · W^T (+ b), the nn.Linear, on the backend. */
static int linear(hp_backend *be, void *y, const void *x, const void *W, const void *b, int T, int N,
                  int K, hp_err *e) {
    OP(be->matmul(be, y, x, W, T, N, K), "matmul");
    if (b) OP(be->add_bias(be, y, b, T, N), "add_bias");
    return 0;
}

/* CLIP over the tiles into *x_out [n_tiles*N, D] on the backend (a workspace buffer):
 * hidden_states[feature_hs]. */
static int tower_run(const hp_llava *lv, const float *pixels, int n_tiles, void **x_out, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    const hp_clip_config *v = &c->vis;
    hp_backend *be = lv->vbe;
    if (!be || !lv->wblock) return hp_errf(e, "%s: vision weights not loaded", lv->m->path);
    if (n_tiles <= 0) return hp_errf(e, "no image tiles");
    size_t D = (size_t)v->D, N = (size_t)v->N, R = (size_t)n_tiles * N, K = (size_t)v->C * v->p * v->p;
    size_t pix = (size_t)v->C * v->S * v->S;
    vis_bufs B;
    if (!(B.x = ws_get(lv, WS_X, R, D, e)) || !(B.xn = ws_get(lv, WS_XN, R, D, e)) ||
        !(B.q = ws_get(lv, WS_Q, R, D, e)) || !(B.k = ws_get(lv, WS_K, R, D, e)) ||
        !(B.v = ws_get(lv, WS_V, R, D, e)) || !(B.z = ws_get(lv, WS_Z, R, D, e)) ||
        !(B.h = ws_get(lv, WS_H, R, (size_t)v->F, e)) ||
        !(B.cols = ws_get(lv, WS_COLS, (size_t)n_tiles * v->P, K, e)) ||
        !(B.img = ws_get(lv, WS_IMG, (size_t)n_tiles, pix, e)))
        return -1;
    /* Embeddings: per tile [CLS, patches] + position embeddings (interpolation is never used:
     * tiles always have the trained size). The patch rows go straight to rows 1..P of the tile. */
    if (be->upload(be, B.img, pixels, (size_t)n_tiles * pix, HP_MEM_F32, e)) return -1;
    OP(be->im2col(be, B.cols, B.img, n_tiles, v->C, v->S, v->p), "im2col");
    for (int b = 0; b < n_tiles; b++) {
        void *xb = be->offset(be, B.x, (size_t)b * N * D, HP_MEM_ACT);
        const void *cb = be->offset(be, B.cols, (size_t)b * v->P * K, HP_MEM_ACT);
        OP(be->matmul(be, be->offset(be, xb, D, HP_MEM_ACT), cb, lv->patch_w, v->P, v->D, (int)K),
           "patch embedding");
        if (be->copy(be, xb, lv->cls, D, HP_MEM_ACT, e)) return -1;
        OP(be->add(be, xb, lv->pos, N * D), "position embedding");
    }
    int Ri = (int)R;
    OP(be->layernorm(be, B.x, B.x, lv->pre_ln_w, lv->pre_ln_b, Ri, v->D, v->eps), "pre_layrnorm");
    /* hidden_states[feature_hs] is the output of layer feature_hs: the layers after it would be
     * computed and thrown away by transformers, so they are not run. */
    for (int l = 0; l < c->feature_hs; l++) {
        const hp_clip_layer *w = &lv->layers[l];
        OP(be->layernorm(be, B.xn, B.x, w->ln1_w, w->ln1_b, Ri, v->D, v->eps), "layernorm");
        if (linear(be, B.q, B.xn, w->wq, w->bq, Ri, v->D, v->D, e) ||
            linear(be, B.k, B.xn, w->wk, w->bk, Ri, v->D, v->D, e) ||
            linear(be, B.v, B.xn, w->wv, w->bv, Ri, v->D, v->D, e))
            return -1;
        if (be->attention_full(be, B.z, B.q, B.k, B.v, n_tiles, v->N, v->H, v->Dh)) {
            if (be->sync(be, e)) return -1;
            return hp_errf(e, "%s: out of memory (attention scores %d x %d)", be->name, v->N, v->N);
        }
        if (linear(be, B.xn, B.z, w->wo, w->bo, Ri, v->D, v->D, e)) return -1;
        OP(be->add(be, B.x, B.xn, R * D), "residual add");
        OP(be->layernorm(be, B.xn, B.x, w->ln2_w, w->ln2_b, Ri, v->D, v->eps), "layernorm");
        if (linear(be, B.h, B.xn, w->fc1_w, w->fc1_b, Ri, v->F, v->D, e)) return -1;
        OP(be->gelu(be, B.h, R * v->F, v->act == HP_ACT_QUICK_GELU), "activation");
        if (linear(be, B.xn, B.h, w->fc2_w, w->fc2_b, Ri, v->D, v->F, e)) return -1;
        OP(be->add(be, B.x, B.xn, R * D), "residual add");
    }
    *x_out = B.x;
    return 0;
}

/* The selected rows of each tile of x ("default" drops the CLS row) into *sel_out
 * [n_tiles*P_sel, D] on the backend. */
static int select_rows(const hp_llava *lv, int n_tiles, const void *x, void **sel_out, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    hp_backend *be = lv->vbe;
    size_t D = (size_t)c->vis.D, N = (size_t)c->vis.N, P = (size_t)c->P_sel, skip = c->select_full ? 0 : 1;
    void *sel = ws_get(lv, WS_SEL, (size_t)n_tiles * P, D, e);
    if (!sel) return -1;
    for (int b = 0; b < n_tiles; b++)
        if (be->copy(be, be->offset(be, sel, (size_t)b * P * D, HP_MEM_ACT),
                     be->offset(be, (void *)x, ((size_t)b * N + skip) * D, HP_MEM_ACT), P * D, HP_MEM_ACT, e))
            return -1;
    *sel_out = sel;
    return 0;
}

/* The projector on the backend: in [rows, D] -> out [rows, Dt]. */
static int project_run(const hp_llava *lv, const void *in, int rows, void *out, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    hp_backend *be = lv->vbe;
    void *ph = ws_get(lv, WS_PH, (size_t)rows, (size_t)c->Dt, e); /* the hidden layer */
    if (!ph) return -1;
    if (linear(be, ph, in, lv->proj1_w, lv->proj1_b, rows, c->Dt, c->vis.D, e)) return -1;
    OP(be->gelu(be, ph, (size_t)rows * c->Dt, c->proj_act == HP_ACT_QUICK_GELU), "activation");
    return linear(be, out, ph, lv->proj2_w, lv->proj2_b, rows, c->Dt, c->Dt, e);
}

int hp_llava_tower(const hp_llava *lv, const float *pixels, int n_tiles, float *out, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    void *x, *sel;
    if (tower_run(lv, pixels, n_tiles, &x, e) || select_rows(lv, n_tiles, x, &sel, e)) return -1;
    return lv->vbe->download(lv->vbe, out, sel, (size_t)n_tiles * c->P_sel * c->vis.D, HP_MEM_ACT, e);
}

int hp_llava_project(const hp_llava *lv, const float *in, int rows, float *out, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    hp_backend *be = lv->vbe;
    if (!be || !lv->wblock) return hp_errf(e, "%s: vision weights not loaded", lv->m->path);
    void *sel, *pout;
    if (!(sel = ws_get(lv, WS_SEL, (size_t)rows, (size_t)c->vis.D, e)) ||
        !(pout = ws_get(lv, WS_OUT, (size_t)rows, (size_t)c->Dt, e)) ||
        be->upload(be, sel, in, (size_t)rows * c->vis.D, HP_MEM_ACT, e) ||
        project_run(lv, sel, rows, pout, e))
        return -1;
    return be->download(be, out, pout, (size_t)rows * c->Dt, HP_MEM_ACT, e);
}

int hp_llava_pack(const hp_llava *lv, const float *proj, int n_tiles, int orig_h, int orig_w,
                  float *out, int *n, hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    int want_tiles, gh, gw, r0, c0, uh, uw;
    int total = geometry(lv, orig_h, orig_w, &want_tiles, &gh, &gw, &r0, &c0, &uh, &uw, e);
    if (total < 0) return -1;
    if (n_tiles != want_tiles)
        return hp_errf(e, "a %dx%d image has %d tiles (1 + %dx%d grid) but %d were given", orig_h,
                       orig_w, want_tiles, gh, gw, n_tiles);
    /* transformers views each grid tile's rows as a side x side patch map; with "full" the CLS
     * row does not fit that map (4.46 fails or scrambles), so there is nothing to match. */
    if (c->select_full)
        return hp_errf(e, "vision_feature_select_strategy \"full\" cannot be packed with anyres grid "
                          "tiles (transformers cannot either)");
    size_t Dt = (size_t)c->Dt, tile = (size_t)c->P_sel * Dt;
    int side = c->vis.S / c->vis.p, o = 0;
    memcpy(out, proj, sizeof(float) * tile); /* the base (whole-image) tile first */
    o += c->P_sel;
    for (int Y = r0; Y < r0 + uh; Y++) {
        for (int X = c0; X < c0 + uw; X++) {
            int t = 1 + (Y / side) * gw + X / side, r = (Y % side) * side + X % side;
            memcpy(out + (size_t)o++ * Dt, proj + t * tile + (size_t)r * Dt, sizeof(float) * Dt);
        }
        memcpy(out + (size_t)o++ * Dt, lv->newline_host, sizeof(float) * Dt);
    }
    *n = o;
    return 0;
}

int hp_llava_image_features(const hp_llava *lv, const hp_pixels *px, float **feats, int *n,
                            hp_err *e) {
    const hp_llava_config *c = &lv->cfg;
    *feats = NULL;
    *n = 0;
    if (px->size != c->vis.S)
        return hp_errf(e, "image tiles are %dx%d pixels but the vision tower takes %dx%d", px->size,
                       px->size, c->vis.S, c->vis.S);
    int tiles, gh, gw, uh, uw;
    int total = hp_llava_geometry(lv, px->orig_h, px->orig_w, &tiles, &gh, &gw, &uh, &uw, e);
    if (total < 0) return -1;
    if (px->n_tiles != tiles)
        return hp_errf(e, "a %dx%d image has %d tiles (1 + %dx%d grid) but %d were given",
                       px->orig_h, px->orig_w, tiles, gh, gw, px->n_tiles);
    size_t rows = (size_t)tiles * c->P_sel;
    float *proj = falloc(rows, c->Dt, e), *out = falloc((size_t)total, c->Dt, e);
    int rc = -1;
    if (!proj || !out) goto done;
    /* Tower, row selection and projector stay on the backend; only the projected rows come
     * back for packing. */
    void *x, *sel, *pout;
    if (tower_run(lv, px->data, tiles, &x, e) || select_rows(lv, tiles, x, &sel, e)) goto done;
    if (!(pout = ws_get(lv, WS_OUT, rows, (size_t)c->Dt, e))) goto done;
    if (project_run(lv, sel, (int)rows, pout, e)) goto done;
    if (lv->vbe->download(lv->vbe, proj, pout, rows * c->Dt, HP_MEM_ACT, e)) goto done;
    if (hp_llava_pack(lv, proj, tiles, px->orig_h, px->orig_w, out, n, e)) goto done;
    if (*n != total) { /* the count the prompt was built with must be the rows produced */
        hp_errf(e, "packed %d image features but the geometry gives %d", *n, total);
        goto done;
    }
    *feats = out;
    out = NULL;
    rc = 0;
done:
    free(proj);
    free(out);
    return rc;
}

/* ---- the prompt ----------------------------------------------------------------------------- */

int hp_llava_expand(const hp_llava *lv, const int32_t *ids, int n, int n_feat, int32_t **out,
                    int *out_n, int32_t **pos, hp_err *e) {
    int tok = lv->cfg.image_token, count = 0;
    *out = NULL;
    *pos = NULL;
    for (int i = 0; i < n; i++) count += ids[i] == tok;
    if (count != 1 && count != n_feat)
        return hp_errf(e, "the ids hold %d image tokens (id %d): expected 1 (expanded here) or %d "
                          "(one per image feature)", count, tok, n_feat);
    int m = count == 1 ? n - 1 + n_feat : n;
    *out = malloc(sizeof(int32_t) * (size_t)m);
    *pos = malloc(sizeof(int32_t) * (size_t)(n_feat > 0 ? n_feat : 1));
    if (!*out || !*pos) {
        free(*out);
        free(*pos);
        *out = *pos = NULL;
        return hp_errf(e, "out of memory");
    }
    int o = 0, p = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] != tok) {
            (*out)[o++] = ids[i];
            continue;
        }
        for (int j = 0; j < (count == 1 ? n_feat : 1); j++) {
            (*pos)[p++] = o;
            (*out)[o++] = tok;
        }
    }
    *out_n = o;
    return 0;
}

int hp_llava_prompt(const hp_llava *lv, const char *user_text, const hp_pixels *px, int32_t **ids,
                    int *n, hp_inject *inj, hp_err *e) {
    const hp_model *m = lv->m;
    *ids = NULL;
    *n = 0;
    memset(inj, 0, sizeof *inj);
    if (!m->tok) return hp_errf(e, "%s: the model has no tokenizer (tokenizer.json)", m->path);
    char *text = NULL;
    if (asprintf(&text, "[INST] <image>\n%s [/INST]", user_text) < 0) return hp_errf(e, "out of memory");
    int32_t *raw = NULL, *pos = NULL;
    float *feats = NULL;
    int nraw = 0, nf = 0, rc = -1;
    if (hp_tok_encode(m->tok, text, strlen(text), 1, &raw, &nraw, e)) goto out;
    int count = 0;
    for (int i = 0; i < nraw; i++) count += raw[i] == lv->cfg.image_token;
    if (count != 1) {
        hp_errf(e, "%s: \"[INST] <image>\\n...\" encodes to %d image tokens (id %d): the tokenizer "
                   "must have \"<image>\" as an added token", m->path, count, lv->cfg.image_token);
        goto out;
    }
    if (hp_llava_image_features(lv, px, &feats, &nf, e)) goto out;
    if (hp_llava_expand(lv, raw, nraw, nf, ids, n, &pos, e)) goto out;
    inj->n = nf;
    inj->pos = pos;
    inj->emb = feats;
    pos = NULL;
    feats = NULL;
    rc = 0;
out:
    free(text);
    free(raw);
    free(pos);
    free(feats);
    return rc;
}

void hp_llava_inject_free(hp_inject *inj) {
    free((void *)inj->pos);
    free((void *)inj->emb);
    memset(inj, 0, sizeof *inj);
}
