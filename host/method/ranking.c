/* ranking.c: ranking files: the head orders by SOMP and by Logit Lens, written by `rank` and
 * `run` (JSON, CSV, heatmap) and read back by `eval`, `run` and the report. */
#include "ranking.h"

#include "fileio.h"
#include "plot.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

cJSON *hp_token_json(const hp_model *m, int id, const char *word) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "token", id);
    char *piece = hp_tok_decode(m->tok, (const int32_t[]){id}, 1, 0);
    cJSON_AddStringToObject(t, "text", piece ? piece : "");
    free(piece);
    if (word) cJSON_AddStringToObject(t, "word", word);
    return t;
}

/* Descending by key, ties: lower head index first (qsort_r is not C11: a file-scope key). */
static const double *sort_key;
static int cmp_idx(const void *a, const void *b) {
    double x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];
    int c = (x < y) - (x > y);
    return c ? c : (*(const int *)a - *(const int *)b);
}

int hp_score_concept(const hp_model *m, const hp_reps *r, const char *words, const char *control,
                     const hp_somp_opts *so, const hp_dict_opts *dopt_in, const char *shared_path, int quiet,
                     hp_dict *dict, hp_head_score *sc, hp_head_score *csc, hp_err *e) {
    hp_dict full = {0}, cdict = {0};
    hp_dict_opts dopt = *dopt_in;
    hp_atomic_file shared;
    FILE *report = quiet ? NULL : stderr;
    memset(dict, 0, sizeof *dict);
    if (hp_atomic_open(&shared, shared_path, e)) return -1;
    fprintf(shared.f, "# %s: concept words whose first token an earlier word already took (no atom of their own)\n",
            words);
    dopt.shared = shared.f;
    dopt.shared_name = shared_path;
    int rc = hp_dict_full(m, &dopt, &full, e) || hp_dict_concept(m, &full, words, &dopt, report, dict, e) ||
             hp_score_heads(r, dict, so, !quiet, sc, e);
    if (!rc && control) {
        fprintf(shared.f, "# %s (--control)\n", control);
        rc = hp_dict_concept(m, &full, control, &dopt, report, &cdict, e) ||
             hp_score_heads(r, &cdict, so, !quiet, csc, e);
    }
    hp_dict_free(&full);
    hp_dict_free(&cdict);
    if (rc) {
        hp_atomic_abort(&shared);
        return -1;
    }
    return hp_atomic_commit(&shared, e);
}

int hp_ranking_write(const hp_model *m, cJSON *j, const hp_head_score *sc, const hp_head_score *csc,
                     const hp_dict *dict, const hp_ranking_out *o, int *order_out, hp_err *e) {
    int nh = m->cfg.L * m->cfg.H, rc = -1;
    int *order_s = malloc(sizeof(int) * nh), *order_l = malloc(sizeof(int) * nh), *rank_s = NULL, *rank_l = NULL;
    double *ks = malloc(sizeof(double) * nh), *kl = malloc(sizeof(double) * nh);
    float *vals = NULL;
    unsigned char *hl = NULL;
    if (!order_s || !order_l || !ks || !kl) {
        hp_errf(e, "out of memory");
        goto done;
    }
    for (int i = 0; i < nh; i++) {
        order_s[i] = order_l[i] = i;
        ks[i] = sc[i].evr - (csc ? csc[i].evr : 0.0);
        kl[i] = sc[i].ll;
    }
    sort_key = ks;
    qsort(order_s, nh, sizeof(int), cmp_idx);
    sort_key = kl;
    qsort(order_l, nh, sizeof(int), cmp_idx);
    rank_s = malloc(sizeof(int) * nh);
    rank_l = malloc(sizeof(int) * nh);
    if (!rank_s || !rank_l) {
        hp_errf(e, "out of memory");
        goto done;
    }
    for (int i = 0; i < nh; i++) {
        rank_s[order_s[i]] = i + 1;
        rank_l[order_l[i]] = i + 1;
    }
    cJSON_AddStringToObject(j, "somp_order_by", o->has_control ? "EVR(concept) - EVR(control)" : "EVR(concept)");
    cJSON_AddNumberToObject(j, "layers", m->cfg.L);
    cJSON_AddNumberToObject(j, "heads_per_layer", m->cfg.H);
    cJSON *dj = cJSON_AddArrayToObject(j, "dictionary");
    for (int i = 0; i < dict->V; i++) cJSON_AddItemToArray(dj, hp_token_json(m, dict->token[i], dict->label[i]));
    cJSON *so_j = cJSON_AddArrayToObject(j, "somp_order"), *ll_j = cJSON_AddArrayToObject(j, "ll_order");
    for (int i = 0; i < nh; i++) {
        cJSON_AddItemToArray(so_j, cJSON_CreateIntArray((const int[]){sc[order_s[i]].layer, sc[order_s[i]].head}, 2));
        cJSON_AddItemToArray(ll_j, cJSON_CreateIntArray((const int[]){sc[order_l[i]].layer, sc[order_l[i]].head}, 2));
    }
    cJSON *hj = cJSON_AddArrayToObject(j, "heads");
    hp_atomic_file af;
    if (hp_atomic_open(&af, o->csv, e)) goto done;
    fprintf(af.f, "layer,head,somp_evr,logit_lens,somp_rank,ll_rank,somp_tokens\n");
    for (int i = 0; i < nh; i++) {
        const hp_head_score *s = &sc[order_s[i]];
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "layer", s->layer);
        cJSON_AddNumberToObject(h, "head", s->head);
        cJSON_AddNumberToObject(h, "somp_evr", s->evr);
        if (csc) {
            cJSON_AddNumberToObject(h, "control_evr", csc[order_s[i]].evr);
            cJSON_AddNumberToObject(h, "specificity", ks[order_s[i]]);
        }
        cJSON_AddNumberToObject(h, "logit_lens", s->ll);
        cJSON_AddNumberToObject(h, "somp_rank", rank_s[order_s[i]]);
        cJSON_AddNumberToObject(h, "ll_rank", rank_l[order_s[i]]);
        cJSON *sup = cJSON_AddArrayToObject(h, "support");
        fprintf(af.f, "%d,%d,%.6g,%.6g,%d,%d,\"", s->layer, s->head, s->evr, s->ll, rank_s[order_s[i]],
                rank_l[order_s[i]]);
        for (int t = 0; t < s->somp.k; t++) {
            int a = s->somp.support[t];
            cJSON_AddItemToArray(sup, hp_token_json(m, dict->token[a], dict->label[a]));
            if (t < 10) fprintf(af.f, "%s%s", t ? " " : "", dict->label[a]);
        }
        fprintf(af.f, "\"\n");
        cJSON_AddItemToArray(hj, h);
    }
    if (hp_atomic_commit(&af, e) || hp_write_json(o->json, j, e)) goto done;
    /* Heatmap of the SOMP scores with the top 8 heads outlined. */
    vals = malloc(sizeof(float) * nh);
    hl = calloc((size_t)nh, 1);
    if (vals && hl) {
        for (int i = 0; i < nh; i++) vals[i] = (float)ks[i];
        for (int i = 0; i < 8 && i < nh; i++) hl[order_s[i]] = 1;
        /* The concept's name, not its path: the word list's file name without extension. */
        const char *base = strrchr(o->concept_name, '/') ? strrchr(o->concept_name, '/') + 1 : o->concept_name;
        int blen = strrchr(base, '.') && strrchr(base, '.') != base ? (int)(strrchr(base, '.') - base) : (int)strlen(base);
        char title[256], sub[160];
        snprintf(title, sizeof title, "Concept \"%.*s\": SOMP %s per head", blen, base,
                 o->has_control ? "EVR minus control EVR" : "explained variance");
        snprintf(sub, sizeof sub, "k = %d SOMP atoms, %d samples, %d dictionary words; top 8 heads outlined", o->somp_k,
                 o->samples, dict->V);
        hp_heatmap hm = {.title = title, .subtitle = sub, .xlabel = "head", .ylabel = "layer",
                         .colorbar_label = o->has_control ? "EVR(concept) - EVR(control)" : "explained variance ratio",
                         .values = vals, .rows = m->cfg.L, .cols = m->cfg.H, .highlight = hl,
                         .vmin = NAN, .vmax = NAN};
        if (hp_plot_heatmap_svg(o->svg, &hm, e)) goto done;
    } else {
        hp_errf(e, "out of memory");
        goto done;
    }
    if (order_out) memcpy(order_out, order_s, sizeof(int) * nh);
    rc = 0;
done:
    cJSON_Delete(j);
    free(order_s);
    free(order_l);
    free(rank_s);
    free(rank_l);
    free(ks);
    free(kl);
    free(vals);
    free(hl);
    return rc;
}

/* ------------------------------------------------------------------ ranking files */

static int read_order(const cJSON *arr, int L, int H, int (**out)[2], int *n, const char *path,
                      const char *key, hp_err *e) {
    if (!cJSON_IsArray(arr)) return hp_errf(e, "%s: '%s' is missing or not a list", path, key);
    *n = cJSON_GetArraySize(arr);
    *out = malloc(sizeof(int[2]) * (size_t)(*n ? *n : 1));
    if (!*out) return hp_errf(e, "out of memory");
    int i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        const cJSON *l = cJSON_GetArrayItem(it, 0), *h = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsNumber(l) || !cJSON_IsNumber(h) || l->valueint < 0 || l->valueint >= L ||
            h->valueint < 0 || h->valueint >= H)
            return hp_errf(e, "%s: %s[%d] is not a [layer, head] pair of this model", path, key, i);
        (*out)[i][0] = l->valueint;
        (*out)[i][1] = h->valueint;
    }
    return 0;
}

int hp_ranking_load(const char *path, hp_ranking *r, hp_err *e) {
    memset(r, 0, sizeof *r);
    cJSON *j = hp_read_json(path, e);
    if (!j) return -1;
    int rc = -1, n2 = 0;
    const cJSON *L = cJSON_GetObjectItemCaseSensitive(j, "layers");
    const cJSON *H = cJSON_GetObjectItemCaseSensitive(j, "heads_per_layer");
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(j, "heads");
    if (!cJSON_IsNumber(L) || !cJSON_IsNumber(H) || L->valueint <= 0 || H->valueint <= 0) {
        hp_errf(e, "%s: not a ranking file (layers / heads_per_layer missing)", path);
        goto done;
    }
    r->L = L->valueint;
    r->H = H->valueint;
    if (read_order(cJSON_GetObjectItemCaseSensitive(j, "somp_order"), r->L, r->H, &r->somp, &r->n, path, "somp_order", e) ||
        read_order(cJSON_GetObjectItemCaseSensitive(j, "ll_order"), r->L, r->H, &r->ll, &n2, path, "ll_order", e))
        goto done;
    if (n2 != r->n) {
        hp_errf(e, "%s: somp_order and ll_order differ in length", path);
        goto done;
    }
    r->somp_score = calloc((size_t)r->L * r->H, sizeof(double));
    r->ll_score = calloc((size_t)r->L * r->H, sizeof(double));
    if (!r->somp_score || !r->ll_score) {
        hp_errf(e, "out of memory");
        goto done;
    }
    for (const cJSON *it = cJSON_IsArray(heads) ? heads->child : NULL; it; it = it->next) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "layer");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "head");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "somp_evr");
        const cJSON *ll = cJSON_GetObjectItemCaseSensitive(it, "logit_lens");
        if (!cJSON_IsNumber(l) || !cJSON_IsNumber(h) || l->valueint < 0 || l->valueint >= r->L ||
            h->valueint < 0 || h->valueint >= r->H)
            continue;
        size_t idx = (size_t)l->valueint * r->H + h->valueint;
        if (cJSON_IsNumber(s)) r->somp_score[idx] = s->valuedouble;
        if (cJSON_IsNumber(ll)) r->ll_score[idx] = ll->valuedouble;
    }
    rc = 0;
done:
    cJSON_Delete(j);
    if (rc) hp_ranking_free(r);
    return rc;
}

int hp_ranking_check(const hp_ranking *r, const char *path, int L, int H, int max_k, hp_err *e) {
    if (r->L != L || r->H != H)
        return hp_errf(e, "%s: ranking is for %d x %d heads, the model has %d x %d", path, r->L, r->H, L, H);
    if (max_k > r->n) return hp_errf(e, "--top %d exceeds the %d heads of %s", max_k, r->n, path);
    return 0;
}

void hp_ranking_free(hp_ranking *r) {
    free(r->somp);
    free(r->ll);
    free(r->somp_score);
    free(r->ll_score);
    memset(r, 0, sizeof *r);
}
