/* model.c: the decoder's tensor table, checkpoint loading (HF safetensors directory or GGUF) into
 * one backend allocation, and head edits. */
#include "model.h"

#include "fileio.h"
#include "gguf.h"
#include "llava.h"

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The one description of the decoder's tensors: loader, `info` and tests read it. */
const hp_tensor_spec hp_tensor_table[HP_T_COUNT] = {
    {HP_T_EMBED, 0, "model.embed_tokens.weight", "token_embd.weight", {'V', 'D'}},
    {HP_T_FINAL_NORM, 0, "model.norm.weight", "output_norm.weight", {'D', 0}},
    {HP_T_LM_HEAD, 0, "lm_head.weight", "output.weight", {'V', 'D'}},
    {HP_T_ATTN_NORM, 1, "model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", {'D', 0}},
    {HP_T_WQ, 1, "model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", {'Q', 'D'}},
    {HP_T_WK, 1, "model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", {'K', 'D'}},
    {HP_T_WV, 1, "model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", {'K', 'D'}},
    {HP_T_WO, 1, "model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", {'D', 'Q'}},
    {HP_T_FFN_NORM, 1, "model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", {'D', 0}},
    {HP_T_W_GATE, 1, "model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", {'F', 'D'}},
    {HP_T_W_UP, 1, "model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", {'F', 'D'}},
    {HP_T_W_DOWN, 1, "model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", {'D', 'F'}},
    {HP_T_BQ, 1, "model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", {'Q', 0}},
    {HP_T_BK, 1, "model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", {'K', 0}},
    {HP_T_BV, 1, "model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", {'K', 0}},
    {HP_T_BO, 1, "model.layers.%d.self_attn.o_proj.bias", "blk.%d.attn_output.bias", {'D', 0}},
    {HP_T_B_GATE, 1, "model.layers.%d.mlp.gate_proj.bias", "blk.%d.ffn_gate.bias", {'F', 0}},
    {HP_T_B_UP, 1, "model.layers.%d.mlp.up_proj.bias", "blk.%d.ffn_up.bias", {'F', 0}},
    {HP_T_B_DOWN, 1, "model.layers.%d.mlp.down_proj.bias", "blk.%d.ffn_down.bias", {'D', 0}},
    {HP_T_Q_NORM, 1, "model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", {'h', 0}},
    {HP_T_K_NORM, 1, "model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", {'h', 0}},
    {HP_T_POST_ATTN_NORM, 1, "model.layers.%d.post_attention_layernorm.weight",
     "blk.%d.post_attention_norm.weight", {'D', 0}},
    {HP_T_POST_FFN_NORM, 1, "model.layers.%d.post_feedforward_layernorm.weight",
     "blk.%d.post_ffw_norm.weight", {'D', 0}},
};

const char *hp_tensor_name(const hp_config *c, hp_role r, int gguf) {
    /* Gemma names the pre-MLP norm for what it is; post_attention_layernorm is its post-norm */
    if (!gguf && c->arch == HP_ARCH_GEMMA3 && r == HP_T_FFN_NORM)
        return "model.layers.%d.pre_feedforward_layernorm.weight";
    return gguf ? hp_tensor_table[r].gguf : hp_tensor_table[r].hf;
}

int hp_role_is_norm(hp_role r) {
    return r == HP_T_FINAL_NORM || r == HP_T_ATTN_NORM || r == HP_T_FFN_NORM || r == HP_T_Q_NORM ||
           r == HP_T_K_NORM || r == HP_T_POST_ATTN_NORM || r == HP_T_POST_FFN_NORM;
}

static int64_t dim_value(const hp_config *c, char d) {
    switch (d) {
    case 'V': return c->V;
    case 'D': return c->D;
    case 'Q': return (int64_t)c->H * c->Dh;
    case 'K': return (int64_t)c->KV * c->Dh;
    case 'F': return c->F;
    case 'h': return c->Dh;
    default: return 0;
    }
}

int hp_tensor_shape(const hp_config *c, hp_role r, int64_t shape[2]) {
    const hp_tensor_spec *s = &hp_tensor_table[r];
    shape[0] = dim_value(c, s->dim[0]);
    shape[1] = s->dim[1] ? dim_value(c, s->dim[1]) : 0;
    return s->dim[1] ? 2 : 1;
}

void **hp_model_slot(hp_model *m, hp_role r, int l) {
    hp_layer *ly = m->layers ? &m->layers[l] : NULL;
    switch (r) {
    case HP_T_EMBED: return &m->embed;
    case HP_T_FINAL_NORM: return &m->final_norm;
    case HP_T_LM_HEAD: return &m->lm_head;
    case HP_T_ATTN_NORM: return &ly->attn_norm;
    case HP_T_WQ: return &ly->wq;
    case HP_T_WK: return &ly->wk;
    case HP_T_WV: return &ly->wv;
    case HP_T_WO: return &ly->wo;
    case HP_T_FFN_NORM: return &ly->ffn_norm;
    case HP_T_W_GATE: return &ly->w_gate;
    case HP_T_W_UP: return &ly->w_up;
    case HP_T_W_DOWN: return &ly->w_down;
    case HP_T_BQ: return &ly->bq;
    case HP_T_BK: return &ly->bk;
    case HP_T_BV: return &ly->bv;
    case HP_T_BO: return &ly->bo;
    case HP_T_B_GATE: return &ly->b_gate;
    case HP_T_B_UP: return &ly->b_up;
    case HP_T_B_DOWN: return &ly->b_down;
    case HP_T_Q_NORM: return &ly->q_norm;
    case HP_T_K_NORM: return &ly->k_norm;
    case HP_T_POST_ATTN_NORM: return &ly->post_attn_norm;
    case HP_T_POST_FFN_NORM: return &ly->post_ffn_norm;
    default: return NULL;
    }
}

int hp_role_needed(const hp_config *c, hp_role r) {
    switch (r) {
    case HP_T_LM_HEAD: return !c->tie_embeddings;
    case HP_T_BQ:
    case HP_T_BK:
    case HP_T_BV: return c->attn_bias;
    case HP_T_BO: return c->o_bias;
    case HP_T_B_GATE:
    case HP_T_B_UP:
    case HP_T_B_DOWN: return c->mlp_bias;
    case HP_T_Q_NORM:
    case HP_T_K_NORM:
    case HP_T_POST_ATTN_NORM:
    case HP_T_POST_FFN_NORM: return c->gemma;
    default: return 1;
    }
}

static int check_config(const hp_config *c, const char *path, hp_err *e) {
    if (c->D <= 0 || c->L <= 0 || c->H <= 0 || c->KV <= 0 || c->Dh <= 0 || c->F <= 0 || c->V <= 0)
        return hp_errf(e, "%s: non-positive model dimension in config", path);
    if (c->H % c->KV)
        return hp_errf(e, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       path, c->H, c->KV);
    if (c->Dh % 2) return hp_errf(e, "%s: head_dim %d is odd (RoPE needs pairs)", path, c->Dh);
    if (c->rms_eps <= 0) return hp_errf(e, "%s: rms_norm_eps must be positive", path);
    return 0;
}

/* llama.cpp's converter interleaves the two RoPE halves of each Q/K head (row h*Dh + 2i + j holds
 * HF row h*Dh + j*Dh/2 + i); undo it so one rotate-half RoPE serves both file formats. */
static int unpermute_rows(float *w, int heads, int Dh, int cols, hp_err *e) {
    size_t n = (size_t)Dh * cols;
    float *tmp = malloc(n * sizeof(float));
    if (!tmp) return hp_errf(e, "out of memory");
    int half = Dh / 2;
    for (int h = 0; h < heads; h++) {
        float *blk = w + (size_t)h * n;
        memcpy(tmp, blk, n * sizeof(float));
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(blk + (size_t)(j * half + i) * cols, tmp + (size_t)(2 * i + j) * cols,
                       sizeof(float) * cols);
    }
    free(tmp);
    return 0;
}

static hp_chat_kind detect_chat(const hp_model *m) {
    if (m->tok && hp_tok_id(m->tok, "<|im_start|>") >= 0) return HP_CHAT_CHATML;
    if (m->tok && hp_tok_id(m->tok, "[INST]") >= 0) return HP_CHAT_MISTRAL;
    if (m->tok && hp_tok_id(m->tok, "<start_of_turn>") >= 0) return HP_CHAT_GEMMA;
    if (m->cfg.arch == HP_ARCH_MISTRAL) return HP_CHAT_MISTRAL;
    return HP_CHAT_NONE;
}

/* Finds the tensor of role r in layer l and checks its shape and dtype against the config. */
static const hp_tensor *find_checked(hp_model *m, hp_role r, int l, hp_err *e) {
    int64_t shape[2];
    int nd = hp_tensor_shape(&m->cfg, r, shape);
    char fmt[256], name[256];
    snprintf(fmt, sizeof fmt, "%s%s", m->prefix, hp_tensor_name(&m->cfg, r, m->is_gguf));
    snprintf(name, sizeof name, fmt, l);
    const hp_tensor *t = hp_store_find(&m->store, name);
    if (!t) {
        hp_errf(e, "%s: missing tensor %s", m->path, name);
        return NULL;
    }
    if (!(t->ndim == nd && t->shape[0] == shape[0] && (nd == 1 || t->shape[1] == shape[1]))) {
        char got[96] = "", want[64];
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        if (nd == 2)
            snprintf(want, sizeof want, "%lld,%lld", (long long)shape[0], (long long)shape[1]);
        else
            snprintf(want, sizeof want, "%lld", (long long)shape[0]);
        hp_errf(e, "%s: tensor %s has shape [%s] but the config implies [%s]", t->file, name, got, want);
        return NULL;
    }
    if (!m->is_gguf && t->dt != HP_F32 && t->dt != HP_F16 && t->dt != HP_BF16) {
        hp_errf(e, "%s: tensor %s has dtype %s (expected F32, F16 or BF16)", t->file, name,
                hp_dtype_name(t->dt));
        return NULL;
    }
    return t;
}

/* Rows of a stored matrix permuted as unpermute_rows does, on rows of rb bytes. */
static int unpermute_rows_bytes(uint8_t *w, int heads, int Dh, size_t rb, hp_err *e) {
    size_t n = (size_t)Dh * rb;
    uint8_t *tmp = malloc(n);
    if (!tmp) return hp_errf(e, "out of memory");
    int half = Dh / 2;
    for (int h = 0; h < heads; h++) {
        uint8_t *blk = w + (size_t)h * n;
        memcpy(tmp, blk, n);
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(blk + (size_t)(j * half + i) * rb, tmp + (size_t)(2 * i + j) * rb, rb);
    }
    free(tmp);
    return 0;
}

static size_t role_elems(const hp_config *c, hp_role r) {
    int64_t shape[2];
    int nd = hp_tensor_shape(c, r, shape);
    return (size_t)shape[0] * (nd == 2 ? (size_t)shape[1] : 1);
}

/* Checks every tensor before anything is allocated; fills n_params and file_dtype. */
static int check_tensors(hp_model *m, hp_err *e) {
    m->n_params = 0;
    for (int r = 0; r < HP_T_COUNT; r++) {
        if (!hp_role_needed(&m->cfg, r)) continue;
        int nl = hp_tensor_table[r].per_layer ? m->cfg.L : 1;
        for (int l = 0; l < nl; l++) {
            const hp_tensor *t = find_checked(m, r, l, e);
            if (!t) return -1;
            if (l == 0) m->file_dtype[r] = t->dt;
        }
        m->n_params += (uint64_t)role_elems(&m->cfg, r) * nl;
    }
    return 0;
}

/* Whether tensor t (role r) stays in its stored type on the backend: GGUF matrices of a type the
 * backend multiplies with (be->keeps_dtype). Vectors (norms, biases) are always converted. */
static int kept(const hp_model *m, hp_role r, const hp_tensor *t) {
    hp_backend *be = m->be;
    return m->is_gguf && be->keeps_dtype && t->ndim == 2 && hp_tensor_table[r].dim[1] &&
           be->keeps_dtype(be, t->dt);
}

#define WALIGN 64 /* bytes: each weight of a mixed-type block starts on a cache line */

static int load_weights(hp_model *m, hp_err *e) {
    hp_config *c = &m->cfg;
    hp_backend *be = m->be;
    size_t esz = be->elem_size(be, HP_MEM_WEIGHT);
    /* Mixed types (some weights kept as stored): one byte-addressed block. */
    int mixed = 0;
    for (int r = 0; r < HP_T_COUNT && !mixed; r++) {
        if (!hp_role_needed(c, r)) continue;
        for (int l = 0; l < (hp_tensor_table[r].per_layer ? c->L : 1) && !mixed; l++) {
            const hp_tensor *t = find_checked(m, r, l, e);
            if (!t) return -1;
            mixed = kept(m, r, t);
        }
    }
    size_t total = 0;
    if (mixed) {
        if (!(m->wdt = calloc((size_t)HP_T_COUNT * c->L, sizeof *m->wdt)))
            return hp_errf(e, "%s: out of memory", m->path);
        for (int r = 0; r < HP_T_COUNT; r++) {
            if (!hp_role_needed(c, r)) continue;
            for (int l = 0; l < (hp_tensor_table[r].per_layer ? c->L : 1); l++) {
                const hp_tensor *t = find_checked(m, r, l, e);
                if (!t) return -1;
                size_t b = kept(m, r, t) ? t->nbytes : role_elems(c, r) * esz;
                total += (b + WALIGN - 1) / WALIGN * WALIGN;
            }
        }
        m->wblock_n = total;
        m->wblock = be->alloc_bytes(be, total, e);
    } else {
        m->wblock_n = m->n_params;
        m->wblock = be->alloc(be, m->wblock_n, HP_MEM_WEIGHT, e);
    }
    if (!m->wblock) return -1;
    m->wbytes = mixed ? total : m->n_params * esz;
    float *tmp = NULL;
    size_t tmp_cap = 0, off = 0;
    for (int r = 0; r < HP_T_COUNT; r++) {
        if (!hp_role_needed(&m->cfg, r)) continue;
        size_t n = role_elems(c, r);
        for (int l = 0; l < (hp_tensor_table[r].per_layer ? c->L : 1); l++) {
            const hp_tensor *t = find_checked(m, r, l, e);
            if (!t) goto fail;
            int q_or_k = r == HP_T_WQ || r == HP_T_WK || r == HP_T_BQ || r == HP_T_BK;
            /* Only the llama architecture is stored interleaved (qwen2 keeps rotate-half). */
            int permuted = m->is_gguf && c->arch == HP_ARCH_LLAMA && q_or_k;
            int heads = r == HP_T_WQ || r == HP_T_BQ ? c->H : c->KV;
            void *dst = mixed ? (char *)m->wblock + off : be->offset(be, m->wblock, off, HP_MEM_WEIGHT);
            *hp_model_slot(m, r, l) = dst;
            if (mixed && kept(m, r, t)) {
                /* as stored; the llama Q/K rows moved whole (a row is whole blocks) */
                m->wdt[(size_t)r * c->L + l] = t->dt;
                size_t rb = t->nbytes / (size_t)t->shape[0];
                if (permuted) {
                    uint8_t *cp = malloc(t->nbytes);
                    int bad = !cp || unpermute_rows_bytes(cp ? memcpy(cp, t->data, t->nbytes) : NULL,
                                                          heads, c->Dh, rb, e) ||
                              be->upload_bytes(be, dst, cp, t->nbytes, e);
                    free(cp);
                    if (bad) {
                        if (!e->msg[0]) hp_errf(e, "%s: out of memory copying %s", m->path, t->name);
                        goto fail;
                    }
                } else if (be->upload_bytes(be, dst, t->data, t->nbytes, e)) {
                    goto fail;
                }
                hp_store_release_tensor(t);
                off += (t->nbytes + WALIGN - 1) / WALIGN * WALIGN;
                continue;
            }
            if (n > tmp_cap) {
                free(tmp);
                tmp = malloc(n * sizeof(float));
                tmp_cap = n;
                if (!tmp) {
                    hp_errf(e, "%s: out of memory converting %s", m->path, t->name);
                    goto fail;
                }
            }
            if (hp_tensor_to_f32(t, tmp, e)) goto fail;
            if (permuted && unpermute_rows(tmp, heads, c->Dh, r == HP_T_WQ || r == HP_T_WK ? c->D : 1, e))
                goto fail;
            /* Gemma's RMSNorm is x·(1 + w): HF files store w, llama.cpp's GGUF 1 + w */
            if (c->gemma && !m->is_gguf && hp_role_is_norm(r))
                for (size_t i = 0; i < n; i++) tmp[i] = 1.0f + tmp[i];
            /* Gemma 3 scales q·k by query_pre_attn_scalar^-1/2, the attention op by Dh^-1/2:
             * the ratio goes into q_norm (RoPE and the norm's output are linear in it). */
            if (c->gemma && r == HP_T_Q_NORM) {
                float f = (float)(sqrt((double)c->Dh) * (double)c->query_scale);
                if (f != 1.0f)
                    for (size_t i = 0; i < n; i++) tmp[i] *= f;
            }
            if (be->upload(be, dst, tmp, n, HP_MEM_WEIGHT, e)) goto fail;
            hp_store_release_tensor(t);
            off += mixed ? (n * esz + WALIGN - 1) / WALIGN * WALIGN : n;
        }
    }
    free(tmp);
    if (c->tie_embeddings) m->lm_head = m->embed;
    /* The file's pages were read once; give them back (they are re-read if ever needed). */
    hp_store_release(&m->store);
    return be->sync(be, e);
fail:
    free(tmp);
    return -1;
}

hp_dtype hp_model_wdt(const hp_model *m, hp_role r, int l) {
    if (!m->wdt) return HP_F32;
    if (r == HP_T_LM_HEAD && m->cfg.tie_embeddings) r = HP_T_EMBED;
    return m->wdt[(size_t)r * m->cfg.L + (hp_tensor_table[r].per_layer ? l : 0)];
}

int hp_model_linear(hp_model *m, void *y, const void *x, hp_role r, int l, int T, int N, int K,
                    int f32) {
    hp_backend *be = m->be;
    const void *W = *hp_model_slot(m, r, l);
    hp_dtype dt = hp_model_wdt(m, r, l);
    if (dt != HP_F32) return be->matmul_q(be, y, x, W, dt, T, N, K, f32);
    return f32 ? be->matmul_f32(be, y, x, W, T, N, K) : be->matmul(be, y, x, W, T, N, K);
}

int hp_model_init_rope(hp_model *m, hp_err *e) {
    const hp_config *c = &m->cfg;
    hp_backend *be = m->be;
    int half = c->Dh / 2;
    float *inv = malloc(sizeof(float) * (size_t)half * 2), *ff = NULL;
    if (!inv) return hp_errf(e, "%s: out of memory", m->path);
    int rc = -1;
    if (c->rope_freqs_tensor) {
        const hp_tensor *t = hp_store_find(&m->store, "rope_freqs.weight");
        if (!t || t->ndim != 1 || t->shape[0] != half) {
            hp_errf(e, "%s: tensor rope_freqs.weight [%d] is missing or misshapen", m->path, half);
            goto out;
        }
        ff = inv + half;
        if (hp_tensor_to_f32(t, ff, e)) goto out;
    }
    if (hp_rope_inv_freq(c, ff, inv, e)) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        hp_errf(e, "%s: %s", m->path, msg);
        goto out;
    }
    if (!m->rope_inv && !(m->rope_inv = be->alloc(be, (size_t)half, HP_MEM_F32, e))) goto out;
    if (be->upload(be, m->rope_inv, inv, (size_t)half, HP_MEM_F32, e)) goto out;
    if (c->gemma) {
        /* the sliding layers' table, and the embedding multiplier: transformers multiplies by
         * sqrt(D) cast to the dtype the weights run in; here that is float32 (a bf16 checkpoint
         * is upcast, as the bf16 fixtures' reference loads it; llama.cpp uses float32 too) */
        float s = c->emb_scale;
        if (hp_rope_inv_freq_local(c, inv, e)) goto out;
        if (!m->rope_inv_local && !(m->rope_inv_local = be->alloc(be, (size_t)half, HP_MEM_F32, e)))
            goto out;
        if (!m->emb_scale && !(m->emb_scale = be->alloc(be, 1, HP_MEM_F32, e))) goto out;
        if (be->upload(be, m->rope_inv_local, inv, (size_t)half, HP_MEM_F32, e) ||
            be->upload(be, m->emb_scale, &s, 1, HP_MEM_F32, e))
            goto out;
    }
    rc = 0;
out:
    free(inv);
    return rc;
}

/* config.json of a decoder, or of LLaVA-NeXT (its text_config; tensors under "language_model."). */
static int read_dir_config(hp_model *m, const char *path, hp_err *e) {
    cJSON *root = hp_read_json(path, e);
    if (!root) return -1;
    int rc;
    if (cJSON_GetObjectItemCaseSensitive(root, "text_config")) {
        m->is_llava = 1;
        snprintf(m->prefix, sizeof m->prefix, "language_model.");
        rc = hp_llava_text_config(root, path, &m->cfg, e);
    } else {
        rc = hp_config_from_cjson(root, path, &m->cfg, e);
    }
    cJSON_Delete(root);
    return rc;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

hp_model *hp_model_load(const char *path, hp_backend *be, hp_err *e) {
    hp_model *m = calloc(1, sizeof *m);
    if (!m) {
        hp_errf(e, "%s: out of memory", path);
        return NULL;
    }
    m->path = strdup(path);
    m->be = be;
    char buf[4096];
    if (!hp_is_dir(path)) {
        if (!hp_file_exists(path)) {
            hp_errf(e, "%s: no such model directory or GGUF file", path);
            goto fail;
        }
        if (!ends_with(path, ".gguf")) {
            hp_errf(e, "%s: not a directory and not a .gguf file", path);
            goto fail;
        }
        m->is_gguf = 1;
        if (hp_store_open_gguf(&m->store, path, e)) goto fail;
        if (hp_config_from_gguf_store(&m->store, &m->cfg, e)) goto fail;
        m->tok = hp_tok_from_gguf(m->store.gguf, e);
        if (!m->tok) goto fail;
    } else {
        if (hp_path_join(buf, sizeof buf, path, "config.json")) {
            hp_errf(e, "%s: path too long", path);
            goto fail;
        }
        if (read_dir_config(m, buf, e)) goto fail;
        if (hp_store_open_safetensors(&m->store, path, e)) goto fail;
        if (hp_path_join(buf, sizeof buf, path, "tokenizer.json") == 0 && hp_file_exists(buf)) {
            m->tok = hp_tok_from_json(buf, e);
            if (!m->tok) goto fail;
        }
    }
    if (check_config(&m->cfg, path, e)) goto fail;
    if (m->tok && hp_tok_vocab_size(m->tok) > m->cfg.V) {
        hp_errf(e, "%s: tokenizer has %d tokens but the model's vocabulary is %d", path,
                hp_tok_vocab_size(m->tok), m->cfg.V);
        goto fail;
    }
    m->layers = calloc((size_t)m->cfg.L, sizeof *m->layers);
    m->alpha = malloc(sizeof(float) * (size_t)m->cfg.L * m->cfg.H);
    if (!m->layers || !m->alpha) {
        hp_errf(e, "%s: out of memory", path);
        goto fail;
    }
    hp_model_clear_edits(m);
    m->chat = detect_chat(m);
    /* A Gemma turn ends with <end_of_turn> (its generation_config lists it beside <eos>) */
    if (m->chat == HP_CHAT_GEMMA && m->cfg.n_eos < 8) {
        int id = hp_tok_id(m->tok, "<end_of_turn>");
        int seen = id < 0;
        for (int i = 0; i < m->cfg.n_eos; i++) seen |= m->cfg.eos_ids[i] == id;
        if (!seen) m->cfg.eos_ids[m->cfg.n_eos++] = id;
    }
    if (check_tensors(m, e)) goto fail;
    if (be && (load_weights(m, e) || hp_model_init_rope(m, e))) goto fail;
    return m;
fail:
    hp_model_free(m);
    return NULL;
}

void hp_model_free(hp_model *m) {
    if (!m) return;
    if (m->wblock) m->be->free(m->be, m->wblock);
    free(m->wdt);
    if (m->rope_inv) m->be->free(m->be, m->rope_inv);
    if (m->rope_inv_local) m->be->free(m->be, m->rope_inv_local);
    if (m->emb_scale) m->be->free(m->be, m->emb_scale);

    if (m->tok) hp_tok_free(m->tok);
    hp_store_close(&m->store);
    free(m->layers);
    free(m->alpha);
    free(m->path);
    free(m);
}

int hp_model_edit(hp_model *m, int layer, int head, float alpha, hp_err *e) {
    if (layer < 0 || layer >= m->cfg.L || head < 0 || head >= m->cfg.H)
        return hp_errf(e, "head L%d.H%d does not exist (the model has %d layers x %d heads)", layer,
                       head, m->cfg.L, m->cfg.H);
    float *a = &m->alpha[(size_t)layer * m->cfg.H + head];
    if (*a == 1.0f && alpha != 1.0f) m->n_edited++;
    if (*a != 1.0f && alpha == 1.0f) m->n_edited--;
    *a = alpha;
    return 0;
}

void hp_model_clear_edits(hp_model *m) {
    for (size_t i = 0; i < (size_t)m->cfg.L * m->cfg.H; i++) m->alpha[i] = 1.0f;
    m->n_edited = 0;
}
