/* pursuit.c: head representations, dictionaries, head scores and ranking files. */
#include "pursuit.h"

#include "dataset.h"
#include "fileio.h"
#include "progress.h"
#include "safetensors_write.h"
#include "store.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int hp_positions_parse(const char *s) {
    if (!strcmp(s, "prompt") || !strcmp(s, "mean")) return HP_POS_PROMPT;
    if (!strcmp(s, "last")) return HP_POS_LAST;
    return -1;
}

const char *hp_positions_name(hp_positions p) { return p == HP_POS_LAST ? "last" : "prompt"; }

/* ------------------------------------------------------------------ representations */

int hp_reps_capture(hp_model *m, const hp_prompts *p, hp_positions pos, int batch, int progress,
                    hp_reps *out, hp_err *e) {
    const hp_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    out->L = c->L;
    out->H = c->H;
    out->N = p->B;
    out->D = c->D;
    size_t per = (size_t)c->L * c->H * c->D, total;
    if (!hp_mul_ok(per, (size_t)p->B, &total)) return hp_errf(e, "representation size overflows");
    out->h = malloc(total * sizeof(float));
    if (!out->h) return hp_errf(e, "out of memory: %zu MiB for head representations", total * 4 >> 20);
    if (batch < 1) batch = 1;
    int maxlen = 0, maxtok = 0;
    for (int b = 0; b < p->B; b++)
        if (p->len[b] > maxlen) maxlen = p->len[b];
    hp_runtime *rt = NULL;
    for (;;) { /* halve the batch until its KV cache fits the backend's memory */
        maxtok = 0;
        for (int b0 = 0; b0 < p->B; b0 += batch) {
            int t = 0;
            for (int b = b0; b < p->B && b < b0 + batch; b++) t += p->len[b];
            if (t > maxtok) maxtok = t;
        }
        rt = hp_runtime_create(m, batch, maxlen, maxtok < 512 ? maxtok : 512, batch, e);
        if (rt || batch == 1 || !strstr(e->msg, "out of memory")) break;
        if (progress) fprintf(stderr, "capture: batch of %d does not fit (%s); trying %d\n", batch, e->msg, batch / 2);
        batch /= 2;
        e->msg[0] = 0;
    }
    int32_t *ids = malloc(sizeof(int32_t) * maxtok), *seq = malloc(sizeof(int32_t) * maxtok);
    int32_t *ps = malloc(sizeof(int32_t) * maxtok);
    float *w = malloc(sizeof(float) * maxtok), *cap = malloc(sizeof(float) * per * batch);
    int rc = -1;
    if (!rt || !ids || !seq || !ps || !w || !cap) {
        if (!e->msg[0]) hp_errf(e, "out of memory");
        goto done;
    }
    hp_progress pb;
    hp_progress_start(&pb, "capture", p->B, "samples", progress);
    for (int b0 = 0; b0 < p->B; b0 += batch) {
        int nb = p->B - b0 < batch ? p->B - b0 : batch, t = 0;
        for (int b = 0; b < nb; b++) {
            int n = p->len[b0 + b];
            for (int i = 0; i < n; i++, t++) {
                ids[t] = p->ids[b0 + b][i];
                seq[t] = b;
                ps[t] = i;
                w[t] = pos == HP_POS_LAST ? (i == n - 1 ? 1.0f : 0.0f) : 1.0f / (float)n;
            }
        }
        memset(cap, 0, sizeof(float) * per * nb);
        hp_fwd f = {.T = t, .ids = ids, .seq = seq, .pos = ps, .cap_w = w, .cap_B = nb, .cap_out = cap};
        if (hp_forward(rt, &f, e)) goto done;
        for (int b = 0; b < nb; b++)
            for (int lh = 0; lh < c->L * c->H; lh++)
                memcpy(out->h + ((size_t)lh * p->B + b0 + b) * c->D, cap + (size_t)b * per + (size_t)lh * c->D,
                       sizeof(float) * c->D);
        hp_progress_update(&pb, b0 + nb);
    }
    hp_progress_end(&pb);
    rc = 0;
done:
    hp_runtime_free(rt);
    free(ids);
    free(seq);
    free(ps);
    free(w);
    free(cap);
    if (rc) hp_reps_free(out);
    return rc;
}

int hp_reps_hash(const char *model, const char *data_path, const char *options, char out[17], hp_err *e) {
    uint64_t h = HP_FNV_OFFSET;
    char *data;
    size_t len;
    if (hp_read_file(data_path, &data, &len, e)) return -1;
    h = hp_fnv1a(h, model, strlen(model) + 1);
    h = hp_fnv1a(h, data, len);
    h = hp_fnv1a(h, options, strlen(options) + 1);
    free(data);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}

int hp_reps_save(const char *path, const hp_reps *r, const char *model, const char *data,
                 const char *options, hp_err *e) {
    char hash[17];
    if (hp_reps_hash(model, data, options, hash, e)) return -1;
    return hp_reps_save_hashed(path, r, model, data, options, hash, e);
}

int hp_reps_save_hashed(const char *path, const hp_reps *r, const char *model, const char *data,
                        const char *options, const char *hash, hp_err *e) {
    const char *meta[] = {"hp_model", model, "hp_data", data, "hp_options", options, "hp_hash", hash,
                          "hp_layout", "heads[layer, head, sample, dim]"};
    hp_st_out t = {.name = "heads", .ndim = 4, .shape = {r->L, r->H, r->N, r->D}, .data = r->h};
    return hp_safetensors_write(path, &t, 1, meta, 5, e);
}

int hp_reps_load(const char *path, const char *expect_hash, hp_reps *r, hp_err *e) {
    memset(r, 0, sizeof *r);
    if (expect_hash) {
        char *h = hp_safetensors_metadata(path, "hp_hash", e);
        if (!h) return -1;
        int same = !strcmp(h, expect_hash);
        free(h);
        if (!same)
            return hp_errf(e, "%s: made from another model, data file or options (hash differs): "
                              "recompute it (drop --reps) or pass matching arguments", path);
    }
    hp_store s = {0};
    if (hp_store_open_safetensors(&s, path, e)) return -1;
    const hp_tensor *t = hp_store_find(&s, "heads");
    int rc = -1;
    if (!t || t->ndim != 4 || t->dt != HP_F32) {
        hp_errf(e, "%s: expected a float32 tensor 'heads' [layer, head, sample, dim]", path);
        goto done;
    }
    r->L = (int)t->shape[0];
    r->H = (int)t->shape[1];
    r->N = (int)t->shape[2];
    r->D = (int)t->shape[3];
    r->h = malloc(t->nbytes);
    if (!r->h) {
        hp_errf(e, "%s: out of memory", path);
        goto done;
    }
    memcpy(r->h, t->data, t->nbytes);
    rc = 0;
done:
    hp_store_close(&s);
    return rc;
}

void hp_reps_free(hp_reps *r) {
    free(r->h);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ dictionaries */

static const hp_tensor *model_tensor(const hp_model *m, hp_role role) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", m->prefix, hp_tensor_name(&m->cfg, role, m->is_gguf));
    return hp_store_find(&m->store, name);
}

int hp_dict_full(const hp_model *m, const hp_dict_opts *o, hp_dict *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    const hp_config *c = &m->cfg;
    const hp_tensor *t = model_tensor(m, c->tie_embeddings ? HP_T_EMBED : HP_T_LM_HEAD);
    const hp_tensor *g = model_tensor(m, HP_T_FINAL_NORM);
    if (!t || !g) return hp_errf(e, "%s: unembedding or final norm tensor missing", m->path);
    out->V = c->V;
    out->D = c->D;
    out->atoms = malloc(sizeof(float) * (size_t)c->V * c->D);
    out->token = malloc(sizeof(int32_t) * (size_t)c->V);
    float *gamma = malloc(sizeof(float) * (size_t)c->D);
    if (!out->atoms || !out->token || !gamma) {
        free(gamma);
        hp_dict_free(out);
        return hp_errf(e, "out of memory (dictionary)");
    }
    if (hp_tensor_to_f32(t, out->atoms, e) || hp_tensor_to_f32(g, gamma, e)) {
        free(gamma);
        hp_dict_free(out);
        return -1;
    }
    if (c->gemma && !m->is_gguf) /* Gemma's HF norm weight w acts as 1 + w */
        for (int d = 0; d < c->D; d++) gamma[d] += 1.0f;
    for (int v = 0; v < c->V; v++) {
        out->token[v] = v;
        float *a = out->atoms + (size_t)v * c->D;
        if (o->fold_norm)
            for (int d = 0; d < c->D; d++) a[d] *= gamma[d];
        if (o->normalize) {
            double s = 0;
            for (int d = 0; d < c->D; d++) s += (double)a[d] * a[d];
            if (s > 0)
                for (int d = 0; d < c->D; d++) a[d] = (float)(a[d] / sqrt(s));
        }
    }
    free(gamma);
    return 0;
}

int hp_dict_concept(const hp_model *m, const hp_dict *full, const char *words_path,
                    const hp_dict_opts *o, FILE *report, hp_dict *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    if (!m->tok) return hp_errf(e, "%s: the model has no tokenizer", m->path);
    hp_wordlist wl;
    if (hp_wordlist_load(words_path, &wl, e)) return -1;
    int cap = 2 * wl.n + 1, n = 0, n_empty = 0, n_coll = 0;
    int32_t *tok = malloc(sizeof(int32_t) * cap);
    char **lab = calloc((size_t)cap, sizeof(char *));
    int *owner = malloc(sizeof(int) * (size_t)full->V);
    if (!tok || !lab || !owner) {
        free(tok);
        free(lab);
        free(owner);
        hp_wordlist_free(&wl);
        return hp_errf(e, "out of memory");
    }
    for (int v = 0; v < full->V; v++) owner[v] = -1;
    for (int w = 0; w < wl.n; w++) {
        int got = 0;
        for (int variant = 0; variant < 2; variant++) {
            char *text = NULL;
            if (asprintf(&text, "%s%s", variant ? " " : "", wl.words[w]) < 0) continue;
            int32_t *ids = NULL;
            int ni = 0;
            hp_err ie;
            int bad = hp_tok_encode(m->tok, text, strlen(text), 0, &ids, &ni, &ie);
            free(text);
            if (bad || ni == 0 || (o->single_token && ni != 1)) {
                free(ids);
                continue;
            }
            int id = ids[0];
            free(ids);
            if (id < 0 || id >= full->V) continue;
            got = 1;
            if (owner[id] == w) continue;
            if (owner[id] >= 0) {
                if (o->shared) /* one line each would bury the log: 152 for SmolLM2's countries */
                    fprintf(o->shared, "'%s' and '%s' share the first token %d (%s)\n", wl.words[owner[id]],
                            wl.words[w], id, hp_tok_piece(m->tok, id));
                n_coll++;
                continue;
            }
            owner[id] = w;
            tok[n] = id;
            lab[n++] = strdup(wl.words[w]);
        }
        if (!got) {
            n_empty++;
            if (report)
                fprintf(report, "  note: '%s' maps to no token%s\n", wl.words[w],
                        o->single_token ? " (no single-token variant)" : "");
        }
    }
    if (report)
        fprintf(report, "dictionary %s: %d words -> %d tokens (%d words without a token, %d word variants whose "
                        "first token an earlier word took%s%s)\n",
                words_path, wl.n, n, n_empty, n_coll, n_coll && o->shared_name ? ": listed in " : "",
                n_coll && o->shared_name ? o->shared_name : "");
    hp_wordlist_free(&wl);
    free(owner);
    if (n == 0) {
        free(tok);
        free(lab);
        return hp_errf(e, "%s: no word of the list maps to a token", words_path);
    }
    out->V = n;
    out->D = full->D;
    out->token = tok;
    out->label = lab;
    out->atoms = malloc(sizeof(float) * (size_t)n * full->D);
    if (!out->atoms) {
        hp_dict_free(out);
        return hp_errf(e, "out of memory");
    }
    for (int i = 0; i < n; i++)
        memcpy(out->atoms + (size_t)i * full->D, full->atoms + (size_t)tok[i] * full->D,
               sizeof(float) * full->D);
    return 0;
}

void hp_dict_free(hp_dict *d) {
    if (d->label)
        for (int i = 0; i < d->V; i++) free(d->label[i]);
    free(d->label);
    free(d->atoms);
    free(d->token);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ scores */

int hp_score_heads(const hp_reps *r, const hp_dict *dict, const hp_somp_opts *o, int progress,
                   hp_head_score *out, hp_err *e) {
    int nh = r->L * r->H;
    if (dict->D != r->D)
        return hp_errf(e, "dictionary width %d differs from the representations' %d", dict->D, r->D);
    hp_somp_result *res = calloc((size_t)nh, sizeof *res);
    double *mean_atom = calloc((size_t)r->D, sizeof(double));
    if (!res || !mean_atom) {
        free(res);
        free(mean_atom);
        return hp_errf(e, "out of memory");
    }
    double t0 = hp_now();
    if (progress) fprintf(stderr, "somp: %d heads x %d samples, %d atoms, k = %d ...\n", nh, r->N, dict->V, o->k);
    int rc = hp_somp_batch(o->backend, r->h, nh, r->N, r->D, dict->atoms, dict->V, o, res, e);
    if (progress && !rc) fprintf(stderr, "somp: done in %.1fs\n", hp_now() - t0);
    for (int v = 0; v < dict->V; v++)
        for (int d = 0; d < r->D; d++) mean_atom[d] += dict->atoms[(size_t)v * r->D + d] / dict->V;
    for (int lh = 0; lh < nh && !rc; lh++) {
        hp_head_score *s = &out[lh];
        s->layer = lh / r->H;
        s->head = lh % r->H;
        s->somp = res[lh];
        s->evr = res[lh].k > 0 ? res[lh].evr[res[lh].k - 1] : 0.0;
        /* Logit Lens: <mean atom, mean sample>, i.e. the mean concept logit. */
        const float *hb = r->h + (size_t)lh * r->N * r->D;
        double ll = 0;
        for (int i = 0; i < r->N; i++)
            for (int d = 0; d < r->D; d++) ll += mean_atom[d] * hb[(size_t)i * r->D + d];
        s->ll = ll / r->N;
    }
    if (rc)
        for (int lh = 0; lh < nh; lh++) hp_somp_result_free(&res[lh]);
    free(res);
    free(mean_atom);
    return rc;
}
