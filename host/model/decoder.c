/* decoder.c: the Llama/Mistral/Qwen2/Gemma 3 forward pass over packed token batches, written once against the
 * backend interface: embedding, per layer RMSNorm -> Q/K/V -> RoPE -> KV cache -> attention ->
 * (head edit) -> (head readout) -> o_proj -> residual -> RMSNorm -> gated MLP act(gate)·up -> residual, then
 * the final norm and the lm_head for the requested rows only. Greedy generation on top. */
#include "model.h"
#include "nvtx.h"
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                               \
    do {                                                                                          \
        if ((call) != 0) {                                                                        \
            if (e && !e->msg[0]) hp_errf(e, "%s:%d: %s failed", __FILE__, __LINE__, #call);       \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)

hp_runtime *hp_runtime_create(hp_model *m, int S, int Tcap, int Tmax, int Bcap, hp_err *e) {
    hp_backend *be = m->be;
    const hp_config *c = &m->cfg;
    hp_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        hp_errf(e, "out of memory");
        return NULL;
    }
    rt->m = m;
    rt->S = S;
    rt->Tcap = Tcap;
    rt->Bcap = Bcap;
    size_t Q = (size_t)c->H * c->Dh, KVD = (size_t)c->KV * c->Dh;
    e->msg[0] = 0;
    /* Size the per-token buffers from the backend's free memory: the KV cache is what the
     * request needs, the chunk of tokens per forward call shrinks to fit (hp_forward splits
     * longer inputs into chunks), keeping 10 % of free memory in reserve. */
    size_t act = be->elem_size(be, HP_MEM_ACT), f32 = be->elem_size(be, HP_MEM_F32);
    size_t kv = 2 * (size_t)c->L * S * Tcap * KVD * act + (Bcap > 0 ? (size_t)Bcap * c->H * c->D * f32 : 0);
    size_t per_tok = (3 * (size_t)c->D + 2 * Q + 2 * KVD + 2 * (size_t)c->F) * act +
                     ((size_t)c->D + c->V + 2) * f32 + 4 * sizeof(int32_t);
    size_t avail = be->free_bytes(be);
    if (avail != SIZE_MAX) {
        avail -= avail / 10;
        if (kv + per_tok > avail) {
            free(rt);
            hp_errf(e, "out of memory on %s: the KV cache for %d sequences x %d positions needs %.1f MiB, "
                       "%.1f MiB are free: use smaller batches (--batch) or shorter prompts",
                    be->name, S, Tcap, (kv + per_tok) / 1048576.0, avail / 1048576.0);
            return NULL;
        }
        size_t fit = (avail - kv) / per_tok;
        if ((size_t)Tmax > fit) Tmax = (int)fit;
    }
    rt->Tmax = Tmax;
#define A(ptr, n, mem)                                                                            \
    do {                                                                                          \
        if (!((ptr) = be->alloc(be, (n), (mem), e))) goto fail;                                   \
    } while (0)
    A(rt->x, (size_t)Tmax * c->D, HP_MEM_ACT);
    A(rt->xn, (size_t)Tmax * c->D, HP_MEM_ACT);
    A(rt->q, (size_t)Tmax * Q, HP_MEM_ACT);
    A(rt->k, (size_t)Tmax * KVD, HP_MEM_ACT);
    A(rt->v, (size_t)Tmax * KVD, HP_MEM_ACT);
    A(rt->z, (size_t)Tmax * Q, HP_MEM_ACT);
    A(rt->o, (size_t)Tmax * c->D, HP_MEM_ACT);
    A(rt->gate, (size_t)Tmax * c->F, HP_MEM_ACT);
    A(rt->up, (size_t)Tmax * c->F, HP_MEM_ACT);
    A(rt->ids, (size_t)Tmax, HP_MEM_I32);
    A(rt->seq, (size_t)Tmax, HP_MEM_I32);
    A(rt->pos, (size_t)Tmax, HP_MEM_I32);
    A(rt->rows, (size_t)Tmax, HP_MEM_I32);
    A(rt->capw, (size_t)Tmax, HP_MEM_F32);
    A(rt->alpha, (size_t)c->L * c->H, HP_MEM_F32);
    A(rt->hrow, (size_t)Tmax * c->D, HP_MEM_F32);
    A(rt->logits, (size_t)Tmax * c->V, HP_MEM_F32);
    if (Bcap > 0) A(rt->cap, (size_t)Bcap * c->H * c->D, HP_MEM_F32);
    if (Bcap > 0 && m->wdt) A(rt->wo_f32, (size_t)c->D * Q, HP_MEM_WEIGHT); /* kept o_proj */
    rt->kc = calloc((size_t)c->L, sizeof(void *));
    rt->vc = calloc((size_t)c->L, sizeof(void *));
    if (!rt->kc || !rt->vc) {
        hp_errf(e, "out of memory");
        goto fail;
    }
    for (int l = 0; l < c->L; l++) {
        A(rt->kc[l], (size_t)S * Tcap * KVD, HP_MEM_ACT);
        A(rt->vc[l], (size_t)S * Tcap * KVD, HP_MEM_ACT);
    }
#undef A
    return rt;
fail:
    if (!e->msg[0]) hp_errf(e, "out of memory allocating the runtime");
    hp_runtime_free(rt);
    return NULL;
}

void hp_runtime_free(hp_runtime *rt) {
    if (!rt) return;
    hp_backend *be = rt->m->be;
    void *bufs[] = {rt->x,    rt->xn,  rt->q,    rt->k,     rt->v,     rt->z,    rt->o,
                    rt->gate, rt->up,  rt->ids,  rt->seq,   rt->pos,   rt->rows, rt->capw,
                    rt->alpha, rt->hrow, rt->logits, rt->cap, rt->wo_f32};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (bufs[i]) be->free(be, bufs[i]);
    for (int l = 0; rt->kc && l < rt->m->cfg.L; l++) {
        if (rt->kc[l]) be->free(be, rt->kc[l]);
        if (rt->vc && rt->vc[l]) be->free(be, rt->vc[l]);
    }
    free(rt->kc);
    free(rt->vc);
    free(rt);
}

static int layer_edited(const hp_model *m, int l) {
    for (int h = 0; h < m->cfg.H; h++)
        if (m->alpha[(size_t)l * m->cfg.H + h] != 1.0f) return 1;
    return 0;
}

/* One chunk of at most Tmax tokens. */
static int forward_chunk(hp_runtime *rt, const hp_fwd *f, int s0, int n, hp_err *e) {
    hp_model *m = rt->m;
    hp_backend *be = m->be;
    const hp_config *c = &m->cfg;
    int Q = c->H * c->Dh, KVD = c->KV * c->Dh;
    if (f->start_layer > 0 && (f->cap_w || f->start_layer > c->L || !f->start_x))
        return hp_errf(e, "forward from layer %d: not with a capture, and with the stream entering it", f->start_layer);
    for (int t = s0; t < s0 + n; t++) {
        if (f->ids[t] < 0 || f->ids[t] >= c->V)
            return hp_errf(e, "token id %d is outside the vocabulary (0..%d)", f->ids[t], c->V - 1);
        if (f->seq[t] < 0 || f->seq[t] >= rt->S || f->pos[t] < 0 || f->pos[t] >= rt->Tcap)
            return hp_errf(e, "token %d: slot %d / position %d outside the KV cache (%d x %d)", t,
                           f->seq[t], f->pos[t], rt->S, rt->Tcap);
        if (f->cap_w && f->seq[t] >= f->cap_B)
            return hp_errf(e, "token %d: capture row %d >= %d", t, f->seq[t], f->cap_B);
    }
    CHECK(be->upload(be, rt->ids, f->ids + s0, n, HP_MEM_I32, e));
    CHECK(be->upload(be, rt->seq, f->seq + s0, n, HP_MEM_I32, e));
    CHECK(be->upload(be, rt->pos, f->pos + s0, n, HP_MEM_I32, e));
    if (f->cap_w) CHECK(be->upload(be, rt->capw, f->cap_w + s0, n, HP_MEM_F32, e));
    if (m->n_edited) CHECK(be->upload(be, rt->alpha, m->alpha, (size_t)c->L * c->H, HP_MEM_F32, e));
    if (f->start_layer > 0) { /* the stream entering start_layer, kept from an earlier run */
        CHECK(be->upload(be, rt->x, f->start_x + (size_t)s0 * c->D, (size_t)n * c->D, HP_MEM_ACT, e));
        goto layers;
    }
    hp_dtype edt = hp_model_wdt(m, HP_T_EMBED, 0);
    CHECK(edt == HP_F32 ? be->embed(be, rt->x, m->embed, rt->ids, n, c->D, c->V)
                        : be->embed_q(be, rt->x, m->embed, edt, rt->ids, n, c->D, c->V));
    /* Gemma: embeddings × sqrt(D) (head_scale with one "head" of width D); injected rows are
     * final embeddings and come after it */
    if (m->emb_scale) CHECK(be->head_scale(be, rt->x, m->emb_scale, n, 1, c->D));
    /* Injected rows, one upload per run of consecutive rows (an image's tokens are one run:
     * thousands of rows in one copy instead of one each). */
    for (int i = 0, k; i < f->n_inject; i += k) {
        int r = f->inject_rows[i];
        k = 1;
        if (r < s0 || r >= s0 + n) continue;
        while (i + k < f->n_inject && f->inject_rows[i + k] == r + k && r + k < s0 + n) k++;
        CHECK(be->upload(be, be->offset(be, rt->x, (size_t)(r - s0) * c->D, HP_MEM_ACT),
                         f->inject + (size_t)i * c->D, (size_t)k * c->D, HP_MEM_ACT, e));
    }
layers:;
    float *cap_host = NULL;
    size_t cap_n = f->cap_w ? (size_t)f->cap_B * c->H * c->D : 0;
    int snap_i = 0;
    if (f->cap_w && !(cap_host = malloc(cap_n * sizeof(float))))
        return hp_errf(e, "out of memory (capture buffer)");
    int rc = -1;
    for (int l = f->start_layer; l <= c->L; l++) {
#define STEP(call)                                                                                \
    do {                                                                                          \
        if ((call) != 0) {                                                                        \
            if (!e->msg[0]) hp_errf(e, "layer %d: %s failed", l, #call);                          \
            goto out;                                                                             \
        }                                                                                         \
    } while (0)
        while (snap_i < f->n_snap && f->snap_layers[snap_i] < l) snap_i++;
        if (snap_i < f->n_snap && f->snap_layers[snap_i] == l)
            STEP(be->download(be, f->snap_out + ((size_t)snap_i * f->T + s0) * c->D, rt->x, (size_t)n * c->D,
                              HP_MEM_ACT, e));
        if (l == c->L) break;
        const hp_layer *w = &m->layers[l];
        STEP(be->rmsnorm(be, rt->xn, rt->x, w->attn_norm, n, c->D, c->rms_eps));
        STEP(hp_model_linear(m, rt->q, rt->xn, HP_T_WQ, l, n, Q, c->D, 0));
        STEP(hp_model_linear(m, rt->k, rt->xn, HP_T_WK, l, n, KVD, c->D, 0));
        STEP(hp_model_linear(m, rt->v, rt->xn, HP_T_WV, l, n, KVD, c->D, 0));
        if (w->bq) {
            STEP(be->add_bias(be, rt->q, w->bq, n, Q));
            STEP(be->add_bias(be, rt->k, w->bk, n, KVD));
            STEP(be->add_bias(be, rt->v, w->bv, n, KVD));
        }
        if (w->q_norm) { /* Gemma 3: RMSNorm of each head's query / key, n*H and n*KV rows */
            STEP(be->rmsnorm(be, rt->q, rt->q, w->q_norm, n * c->H, c->Dh, c->rms_eps));
            STEP(be->rmsnorm(be, rt->k, rt->k, w->k_norm, n * c->KV, c->Dh, c->rms_eps));
        }
        const void *rinv = c->gemma && c->layer_local[l] ? m->rope_inv_local : m->rope_inv;
        STEP(be->rope(be, rt->q, rt->pos, rinv, n, c->H, c->Dh));
        STEP(be->rope(be, rt->k, rt->pos, rinv, n, c->KV, c->Dh));
        STEP(be->kv_store(be, rt->kc[l], rt->vc[l], rt->k, rt->v, rt->seq, rt->pos, n, KVD, rt->Tcap));
        STEP(be->attention(be, rt->z, rt->q, rt->kc[l], rt->vc[l], rt->seq, rt->pos, n, c->H, c->KV,
                           c->Dh, rt->Tcap, hp_layer_window(c, l)));
        if (m->n_edited && layer_edited(m, l))
            STEP(be->head_scale(be, rt->z, be->offset(be, rt->alpha, (size_t)l * c->H, HP_MEM_F32), n,
                                c->H, c->Dh));
        /* A head's contribution is z_h · W_O,h (its o_proj slice). In Gemma 3 the attention
         * output then goes through post_attention_layernorm, which normalises the SUM of the
         * heads: not linear per head, so the captured contribution is the one before that norm
         * (what each head writes into the attention output, not the residual stream). */
        if (f->cap_w) {
            HP_NVTX_PUSH("readout");
            /* the readout takes o_proj in the backend's weight type: a kept one is
                             * dequantised into the runtime's scratch first */
            hp_dtype odt = hp_model_wdt(m, HP_T_WO, l);
            const void *wo = w->wo;
            int bad = 0;
            if (odt != HP_F32) {
                bad = !rt->wo_f32 || be->dequant_q(be, rt->wo_f32, w->wo, odt, (size_t)c->D * Q);
                wo = rt->wo_f32;
            }
            bad = bad || be->zero(be, rt->cap, cap_n, HP_MEM_F32, e) ||
                      be->head_readout(be, rt->cap, rt->z, rt->capw, rt->seq, wo, n, f->cap_B,
                                       c->H, c->Dh, c->D) ||
                      be->download(be, cap_host, rt->cap, cap_n, HP_MEM_F32, e);
            size_t HD = (size_t)c->H * c->D;
            for (int b = 0; !bad && b < f->cap_B; b++) {
                float *dst = f->cap_out + ((size_t)b * c->L + l) * HD;
                const float *src = cap_host + (size_t)b * HD;
                for (size_t i = 0; i < HD; i++) dst[i] += src[i];
            }
            HP_NVTX_POP();
            STEP(bad);
        }
        STEP(hp_model_linear(m, rt->o, rt->z, HP_T_WO, l, n, c->D, Q, 0));
        if (w->bo) STEP(be->add_bias(be, rt->o, w->bo, n, c->D)); /* no head's contribution */
        if (w->post_attn_norm)
            STEP(be->rmsnorm(be, rt->o, rt->o, w->post_attn_norm, n, c->D, c->rms_eps));
        STEP(be->add(be, rt->x, rt->o, (size_t)n * c->D));
        STEP(be->rmsnorm(be, rt->xn, rt->x, w->ffn_norm, n, c->D, c->rms_eps));
        STEP(hp_model_linear(m, rt->gate, rt->xn, HP_T_W_GATE, l, n, c->F, c->D, 0));
        STEP(hp_model_linear(m, rt->up, rt->xn, HP_T_W_UP, l, n, c->F, c->D, 0));
        if (w->b_gate) {
            STEP(be->add_bias(be, rt->gate, w->b_gate, n, c->F));
            STEP(be->add_bias(be, rt->up, w->b_up, n, c->F));
        }
        STEP(be->glu(be, rt->gate, rt->gate, rt->up, (size_t)n * c->F, c->mlp_act));
        STEP(hp_model_linear(m, rt->o, rt->gate, HP_T_W_DOWN, l, n, c->D, c->F, 0));
        if (w->b_down) STEP(be->add_bias(be, rt->o, w->b_down, n, c->D));
        if (w->post_ffn_norm)
            STEP(be->rmsnorm(be, rt->o, rt->o, w->post_ffn_norm, n, c->D, c->rms_eps));
        STEP(be->add(be, rt->x, rt->o, (size_t)n * c->D));
#undef STEP
    }
    /* Logits for the requested rows that fall in this chunk. */
    if (f->n_logits > 0) {
        int32_t *rows = malloc(sizeof(int32_t) * (size_t)n);
        int *dst = malloc(sizeof(int) * (size_t)n);
        int nr = 0;
        if (!rows || !dst) {
            free(rows);
            free(dst);
            hp_errf(e, "out of memory");
            goto out;
        }
        for (int i = 0; i < f->n_logits; i++) {
            int r = f->logit_rows[i];
            if (r >= s0 && r < s0 + n) {
                rows[nr] = r - s0;
                dst[nr++] = i;
            }
        }
        int bad = 0;
        if (nr > 0) {
            bad |= be->rmsnorm(be, rt->xn, rt->x, m->final_norm, n, c->D, c->rms_eps);
            bad |= be->upload(be, rt->rows, rows, nr, HP_MEM_I32, e);
            bad |= be->gather_rows_f32(be, rt->hrow, rt->xn, rt->rows, nr, c->D);
            bad |= hp_model_linear(m, rt->logits, rt->hrow, HP_T_LM_HEAD, 0, nr, c->V, c->D, 1);
            float *tmp = bad ? NULL : malloc(sizeof(float) * (size_t)nr * c->V);
            if (!tmp || be->download(be, tmp, rt->logits, (size_t)nr * c->V, HP_MEM_F32, e)) {
                bad = 1;
            } else {
                /* Gemma's final_logit_softcapping, on the host (float32 as HF: divide,
                 * tanh, multiply) */
                if (c->final_softcap > 0)
                    for (size_t i = 0; i < (size_t)nr * c->V; i++)
                        tmp[i] = tanhf(tmp[i] / c->final_softcap) * c->final_softcap;
                for (int i = 0; i < nr; i++)
                    memcpy(f->logits_out + (size_t)dst[i] * c->V, tmp + (size_t)i * c->V,
                           sizeof(float) * c->V);
            }
            free(tmp);
        }
        free(rows);
        free(dst);
        if (bad) {
            if (!e->msg[0]) hp_errf(e, "computing logits failed");
            goto out;
        }
    }
    rc = be->sync(be, e);
out:
    free(cap_host);
    return rc;
}

int hp_forward(hp_runtime *rt, const hp_fwd *f, hp_err *e) {
    e->msg[0] = 0;
    if (f->cap_w && f->cap_B > rt->Bcap)
        return hp_errf(e, "capture of %d rows exceeds the runtime's %d", f->cap_B, rt->Bcap);
    HP_NVTX_PUSH(f->cap_w ? "capture" : "forward");
    int rc = 0;
    for (int s0 = 0; s0 < f->T && !rc; s0 += rt->Tmax) {
        int n = f->T - s0 < rt->Tmax ? f->T - s0 : rt->Tmax;
        rc = forward_chunk(rt, f, s0, n, e);
    }
    HP_NVTX_POP();
    return rc ? -1 : 0;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int is_eos(const hp_config *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return c->n_eos == 0 && id == c->eos_id;
}

void hp_prefix_init(hp_prefix *p, const int *layers, int n, int L) {
    memset(p, 0, sizeof *p);
    for (int l = 1; l <= L; l++) /* increasing, unique, in range */
        for (int i = 0; i < n; i++)
            if (layers[i] == l && p->n_layers < HP_PREFIX_MAX_LAYERS) {
                p->layers[p->n_layers++] = l;
                break;
            }
}

void hp_prefix_free(hp_prefix *p) {
    free(p->x[0]);
    free(p->x[1]);
    free(p->kv);
    int n = p->n_layers, layers[HP_PREFIX_MAX_LAYERS];
    memcpy(layers, p->layers, sizeof layers);
    memset(p, 0, sizeof *p);
    p->n_layers = n; /* the candidates stay: the prefix can be recorded again */
    memcpy(p->layers, layers, sizeof layers);
}

static uint64_t prompts_hash(int B, const int32_t *const *ids, const int *len, int Tcap) {
    uint64_t h = hp_fnv1a(HP_FNV_OFFSET, &B, sizeof B);
    h = hp_fnv1a(h, &Tcap, sizeof Tcap);
    for (int b = 0; b < B; b++) {
        h = hp_fnv1a(h, &len[b], sizeof len[b]);
        h = hp_fnv1a(h, ids[b], sizeof(int32_t) * (size_t)len[b]);
    }
    return h;
}

/* The KV cache of layers [0, Lk) between the runtime and the prefix (to: prefix <- runtime). */
static int prefix_kv(hp_runtime *rt, hp_prefix *p, int Lk, int to_prefix, hp_err *e) {
    hp_backend *be = rt->m->be;
    for (int l = 0; l < Lk; l++) {
        float *k = p->kv + (size_t)l * 2 * p->kv_n, *v = k + p->kv_n;
        int bad = to_prefix ? be->download(be, k, rt->kc[l], p->kv_n, HP_MEM_ACT, e) ||
                                  be->download(be, v, rt->vc[l], p->kv_n, HP_MEM_ACT, e)
                            : be->upload(be, rt->kc[l], k, p->kv_n, HP_MEM_ACT, e) ||
                                  be->upload(be, rt->vc[l], v, p->kv_n, HP_MEM_ACT, e);
        if (bad) return -1;
    }
    return 0;
}

/* The prompt prefill: the shared prefix of P tokens in slot 0 (its KV copied to the other
 * slots), then the rest of every prompt packed, logits at each prompt's last token. mode 0:
 * plain; 1: record the prefix (snapshots of each call); 2: start at layer `start` from the
 * prefix's snapshots. */
typedef struct prefill_in {
    int B, P, T;
    int32_t *tid, *tseq, *tpos, *rows;
    int n_inj;
    int32_t *inj_rows;
    float *inj_emb;
    float *logits;
} prefill_in;

static int prefill(hp_runtime *rt, const prefill_in *in, hp_prefix *pre, int mode, int start, hp_err *e) {
    hp_model *m = rt->m;
    const hp_config *c = &m->cfg;
    int si = 0;
    if (mode == 2)
        while (pre->layers[si] != start) si++;
    int call = 0;
    if (in->P > 0) {
        int32_t *pid = malloc(sizeof(int32_t) * (size_t)in->P * 3);
        if (!pid) return hp_errf(e, "out of memory");
        for (int i = 0; i < in->P; i++) {
            pid[i] = in->tid[i];
            pid[in->P + i] = 0;
            pid[2 * in->P + i] = i;
        }
        hp_fwd pf = {.T = in->P, .ids = pid, .seq = pid + in->P, .pos = pid + 2 * in->P};
        if (mode == 1) pf.n_snap = pre->n_layers, pf.snap_layers = pre->layers, pf.snap_out = pre->x[0];
        if (mode == 2) pf.start_layer = start, pf.start_x = pre->x[0] + (size_t)si * in->P * c->D;
        int rc = hp_forward(rt, &pf, e);
        free(pid);
        if (rc) return -1;
        size_t KVD = (size_t)c->KV * c->Dh, row = (size_t)rt->Tcap * KVD;
        for (int l = 0; l < c->L; l++)
            for (int b = 1; b < in->B; b++) {
                hp_backend *be = m->be;
                if (be->copy(be, be->offset(be, rt->kc[l], b * row, HP_MEM_ACT), rt->kc[l], in->P * KVD, HP_MEM_ACT, e) ||
                    be->copy(be, be->offset(be, rt->vc[l], b * row, HP_MEM_ACT), rt->vc[l], in->P * KVD, HP_MEM_ACT, e))
                    return -1;
            }
        call = 1;
    }
    hp_fwd f = {.T = in->T, .ids = in->tid + in->P, .seq = in->tseq + in->P, .pos = in->tpos + in->P,
                .n_logits = in->B, .logit_rows = in->rows, .logits_out = in->logits, .n_inject = in->n_inj,
                .inject_rows = in->inj_rows, .inject = in->inj_emb};
    if (mode == 1) f.n_snap = pre->n_layers, f.snap_layers = pre->layers, f.snap_out = pre->x[call];
    if (mode == 2) f.start_layer = start, f.start_x = pre->x[call] + (size_t)si * in->T * c->D;
    return hp_forward(rt, &f, e);
}

int hp_generate(hp_model *m, int B, const int32_t *const *ids, const int *len, const hp_inject *inj,
                int max_new, int no_eos, int32_t **out, int *out_n, int progress, hp_err *e) {
    return hp_generate_ex(m, B, ids, len, inj, max_new, no_eos, out, out_n, progress, NULL, NULL, e);
}

int hp_generate_ex(hp_model *m, int B, const int32_t *const *ids, const int *len, const hp_inject *inj,
                   int max_new, int no_eos, int32_t **out, int *out_n, int progress, hp_prefix *pre,
                   float *prefill_logits, hp_err *e) {
    const hp_config *c = &m->cfg;
    int total = 0, maxlen = 0;
    for (int b = 0; b < B; b++) {
        if (len[b] <= 0) return hp_errf(e, "prompt %d is empty", b);
        total += len[b];
        if (len[b] > maxlen) maxlen = len[b];
        out[b] = malloc(sizeof(int32_t) * (size_t)(max_new > 0 ? max_new : 1));
        out_n[b] = 0;
        if (!out[b]) return hp_errf(e, "out of memory");
    }
    if (pre && pre->n_layers == 0) pre = NULL; /* nothing to start from */
    int Tmax = total < 256 ? total : 256;
    if (Tmax < B) Tmax = B;
    hp_runtime *rt = hp_runtime_create(m, B, maxlen + max_new, Tmax, 0, e);
    if (!rt) {
        for (int b = 0; b < B; b++) {
            free(out[b]);
            out[b] = NULL;
        }
        if (B == 1 || pre || prefill_logits || !strstr(e->msg, "out of memory")) return -1;
        /* The KV cache of the whole batch does not fit: generate the halves one after the other. */
        int h = B / 2;
        e->msg[0] = 0;
        if (hp_generate(m, h, ids, len, inj, max_new, no_eos, out, out_n, progress, e)) return -1;
        return hp_generate(m, B - h, ids + h, len + h, inj ? inj + h : NULL, max_new, no_eos, out + h,
                           out_n + h, progress, e);
    }
    HP_NVTX_PUSH("generate");
    int32_t *tid = malloc(sizeof(int32_t) * (size_t)total), *tseq = malloc(sizeof(int32_t) * (size_t)total);
    int32_t *tpos = malloc(sizeof(int32_t) * (size_t)total), *rows = malloc(sizeof(int32_t) * (size_t)B);
    int *done = calloc((size_t)B, sizeof(int));
    float *logits = malloc(sizeof(float) * (size_t)B * c->V), *saved_alpha = NULL;
    int32_t *inj_rows = NULL;
    float *inj_emb = NULL;
    int rc = -1, saved_n = 0;
    if (!tid || !tseq || !tpos || !rows || !done || !logits) {
        hp_errf(e, "out of memory");
        goto out;
    }
    /* Prompts built from one template share a prefix: run it once in slot 0 and copy its
     * KV rows to the other slots (edits apply to the prefix too, so this is per model state). */
    int P = 0;
    if (B > 1) {
        int minlen = len[0];
        for (int b = 1; b < B; b++)
            if (len[b] < minlen) minlen = len[b];
        for (P = 0; P < minlen - 1; P++) {
            int same = 1;
            for (int b = 1; b < B && same; b++) same = ids[b][P] == ids[0][P];
            if (!same) break;
        }
        for (int b = 0; inj && b < B; b++) /* injected rows differ between prompts */
            for (int i = 0; i < inj[b].n; i++)
                if (inj[b].pos[i] < P) P = inj[b].pos[i];
        if (P < 4) P = 0;
    }
    for (int i = 0; i < P; i++) tid[i] = ids[0][i];
    /* The rest of every prompt, packed after the shared prefix's tokens. */
    int T = 0, n_inj = 0;
    for (int b = 0; inj && b < B; b++) n_inj += inj[b].n;
    if (n_inj) {
        inj_rows = malloc(sizeof(int32_t) * (size_t)n_inj);
        inj_emb = malloc(sizeof(float) * (size_t)n_inj * c->D);
        if (!inj_rows || !inj_emb) {
            hp_errf(e, "out of memory");
            goto out;
        }
        n_inj = 0;
    }
    for (int b = 0; b < B; b++) {
        int t0 = T;
        for (int i = P; i < len[b]; i++, T++) {
            tid[P + T] = ids[b][i];
            tseq[P + T] = b;
            tpos[P + T] = i;
        }
        rows[b] = T - 1;
        for (int i = 0; inj && i < inj[b].n; i++) {
            if (inj[b].pos[i] < P || inj[b].pos[i] >= len[b]) continue;
            inj_rows[n_inj] = t0 + inj[b].pos[i] - P;
            memcpy(inj_emb + (size_t)n_inj++ * c->D, inj[b].emb + (size_t)i * c->D, sizeof(float) * c->D);
        }
    }
    prefill_in in = {.B = B, .P = P, .T = T, .tid = tid, .tseq = tseq, .tpos = tpos, .rows = rows, .n_inj = n_inj,
                     .inj_rows = inj_rows, .inj_emb = inj_emb, .logits = logits};
    int mode = 0, start = 0;
    if (pre) {
        uint64_t h = prompts_hash(B, ids, len, rt->Tcap);
        if (pre->recorded && pre->prompts != h) {
            hp_errf(e, "a kept prefill is reused for other prompts");
            goto out;
        }
        if (!pre->recorded) { /* one unedited prefill, its stream and KV cache kept */
            size_t KVD = (size_t)c->KV * c->Dh;
            pre->n_calls = P > 0 ? 2 : 1;
            pre->T[0] = P > 0 ? P : T;
            pre->T[1] = P > 0 ? T : 0;
            pre->Lk = pre->layers[pre->n_layers - 1];
            pre->kv_n = (size_t)B * rt->Tcap * KVD;
            pre->x[0] = malloc(sizeof(float) * (size_t)pre->n_layers * pre->T[0] * c->D);
            pre->x[1] = P > 0 ? malloc(sizeof(float) * (size_t)pre->n_layers * T * c->D) : NULL;
            pre->kv = malloc(sizeof(float) * (size_t)pre->Lk * 2 * pre->kv_n);
            saved_alpha = malloc(sizeof(float) * (size_t)c->L * c->H);
            if (!pre->x[0] || (P > 0 && !pre->x[1]) || !pre->kv || !saved_alpha) {
                hp_prefix_free(pre);
                hp_errf(e, "out of memory (kept prefill)");
                goto out;
            }
            memcpy(saved_alpha, m->alpha, sizeof(float) * (size_t)c->L * c->H);
            saved_n = m->n_edited;
            hp_model_clear_edits(m);
            int r1 = prefill(rt, &in, pre, 1, 0, e) || prefix_kv(rt, pre, pre->Lk, 1, e);
            memcpy(m->alpha, saved_alpha, sizeof(float) * (size_t)c->L * c->H);
            m->n_edited = saved_n;
            if (r1) {
                hp_prefix_free(pre);
                goto out;
            }
            pre->prompts = h;
            pre->recorded = 1;
        }
        /* Start at the highest kept layer at or below the lowest edited one. */
        int low = c->L;
        for (int i = 0; i < c->L * c->H && m->n_edited; i++)
            if (m->alpha[i] != 1.0f) {
                low = i / c->H;
                break;
            }
        for (int i = 0; i < pre->n_layers; i++)
            if (pre->layers[i] <= low) start = pre->layers[i];
        if (start > 0) {
            mode = 2;
            if (prefix_kv(rt, pre, start, 0, e)) goto out;
        }
    }
    hp_progress pb;
    hp_progress_start(&pb, "generate", max_new, "tok", progress);
    if (prefill(rt, &in, pre, mode, start, e)) goto out;
    if (prefill_logits) memcpy(prefill_logits, logits, sizeof(float) * (size_t)B * c->V);
    for (int step = 0; step < max_new; step++) {
        int na = 0;
        for (int b = 0; b < B; b++) {
            if (done[b]) continue;
            int tok = argmax(logits + (size_t)na * c->V, c->V);
            out[b][out_n[b]++] = tok;
            if ((!no_eos && is_eos(c, tok)) || out_n[b] >= max_new) done[b] = 1;
            na++;
        }
        hp_progress_update(&pb, step + 1);
        /* Decode step: one token per unfinished sequence at its next position. */
        int n = 0;
        for (int b = 0; b < B; b++) {
            if (done[b]) continue;
            tid[n] = out[b][out_n[b] - 1];
            tseq[n] = b;
            tpos[n] = len[b] + out_n[b] - 1;
            rows[n] = n;
            n++;
        }
        if (n == 0) break;
        hp_fwd d = {.T = n, .ids = tid, .seq = tseq, .pos = tpos, .n_logits = n, .logit_rows = rows,
                    .logits_out = logits};
        if (hp_forward(rt, &d, e)) goto out;
    }
    hp_progress_end(&pb);
    rc = 0;
out:
    free(tid);
    free(tseq);
    free(tpos);
    free(rows);
    free(done);
    free(logits);
    free(inj_rows);
    free(inj_emb);
    free(saved_alpha);
    hp_runtime_free(rt);
    HP_NVTX_POP();
    return rc;
}
