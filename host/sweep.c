/* sweep.c: the edit sweep (plan of configurations, checkpointed units, curves). */
#include "sweep.h"

#include "fileio.h"
#include "nvtx.h"
#include "progress.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *const hp_sweep_method_name[4] = {"unedited", "somp", "logit_lens", "random"};

/* The random controls' stream: one constant for every task, so that the same --seed draws the
 * same control heads in QA, classification and captioning. */
#define SWEEP_SEED_SALT 0x5eed5eedull

int hp_sweep_index(const hp_sweep *s, int ai, int ki, int x) { return 1 + (ai * s->nk + ki) * s->per_k + x; }

int hp_sweep_plan(hp_sweep *s, const hp_ranking *rk, int L, int H, const int *ks, int nk,
                  const float *alpha, int na, int n_random, uint64_t seed, hp_err *e) {
    memset(s, 0, sizeof *s);
    if (!rk) { /* no ranking: the unedited model alone */
        s->nconf = 1;
        if (!(s->conf = calloc(1, sizeof *s->conf))) return hp_errf(e, "out of memory");
        s->conf[0] = (hp_sweep_conf){.method = HP_SWEEP_UNEDITED, .draw = -1, .alpha = 1.0f};
        snprintf(s->conf[0].label, sizeof s->conf[0].label, "unedited");
        return 0;
    }
    if (nk < 1 || nk > HP_EVAL_MAX_K || na < 1 || na > HP_SWEEP_MAX_ALPHA || n_random < 0)
        return hp_errf(e, "sweep: %d values of k (1..%d), %d alphas (1..%d), %d random draws", nk, HP_EVAL_MAX_K,
                       na, HP_SWEEP_MAX_ALPHA, n_random);
    s->nk = nk;
    s->na = na;
    s->n_random = n_random;
    s->per_k = 2 + n_random;
    memcpy(s->ks, ks, sizeof(int) * (size_t)nk);
    memcpy(s->alpha, alpha, sizeof(float) * (size_t)na);
    s->nconf = 1 + na * nk * s->per_k;
    s->heads = calloc((size_t)nk * (size_t)s->per_k, sizeof *s->heads);
    s->conf = calloc((size_t)s->nconf, sizeof *s->conf);
    int *short_layers = calloc((size_t)nk * (size_t)s->per_k, sizeof(int));
    if (!s->heads || !s->conf || !short_layers) {
        free(short_layers);
        hp_sweep_free(s);
        return hp_errf(e, "out of memory");
    }
    uint64_t rng = seed ^ SWEEP_SEED_SALT;
    for (int ki = 0; ki < nk; ki++) {
        hp_headset *h = s->heads + ki * s->per_k;
        if (hp_headset_top((const int(*)[2])rk->somp, rk->n, ks[ki], &h[0], e) ||
            hp_headset_top((const int(*)[2])rk->ll, rk->n, ks[ki], &h[1], e)) {
            free(short_layers);
            hp_sweep_free(s);
            return -1;
        }
        for (int d = 0; d < n_random; d++) {
            int sl = 0;
            if (hp_headset_random(&h[0], L, H, &rng, &h[2 + d], &sl, e)) {
                free(short_layers);
                hp_sweep_free(s);
                return -1;
            }
            short_layers[ki * s->per_k + 2 + d] = sl;
        }
    }
    s->conf[0] = (hp_sweep_conf){.method = HP_SWEEP_UNEDITED, .draw = -1, .alpha = 1.0f};
    snprintf(s->conf[0].label, sizeof s->conf[0].label, "unedited");
    for (int ai = 0; ai < na; ai++)
        for (int ki = 0; ki < nk; ki++)
            for (int x = 0; x < s->per_k; x++) {
                hp_sweep_conf *c = &s->conf[hp_sweep_index(s, ai, ki, x)];
                *c = (hp_sweep_conf){.method = x < 2 ? HP_SWEEP_SOMP + x : HP_SWEEP_RANDOM, .ai = ai, .ki = ki,
                                     .draw = x - 2 < 0 ? -1 : x - 2, .k = ks[ki], .alpha = alpha[ai],
                                     .hs = &s->heads[ki * s->per_k + x],
                                     .short_layers = short_layers[ki * s->per_k + x]};
                int n = x == 0   ? snprintf(c->label, sizeof c->label, "SOMP k=%d", ks[ki])
                        : x == 1 ? snprintf(c->label, sizeof c->label, "LL k=%d", ks[ki])
                                 : snprintf(c->label, sizeof c->label, "random %d/%d k=%d", x - 1, n_random, ks[ki]);
                if (na > 1 && n > 0 && (size_t)n < sizeof c->label)
                    snprintf(c->label + n, sizeof c->label - (size_t)n, " a=%g", alpha[ai]);
            }
    free(short_layers);
    return 0;
}

void hp_sweep_free(hp_sweep *s) {
    for (int i = 0; s->heads && i < s->nk * s->per_k; i++) hp_headset_free(&s->heads[i]);
    free(s->heads);
    free(s->conf);
    memset(s, 0, sizeof *s);
}

/* ---- checkpoints ---- */

/* DIR/<label>[.a<alpha>][.i<first item>].json: the alpha is in the name of every edited
 * configuration (tasks run one alpha at a time may share the folder). */
static char *unit_path(const hp_sweep_task *t, const hp_sweep_conf *cf, int i0, int whole) {
    char name[128], *path = NULL;
    size_t j = 0;
    for (const char *q = cf->label; *q && j + 1 < 96; q++)
        name[j++] = (isalnum((unsigned char)*q) || *q == '-') ? *q : '_';
    name[j] = 0;
    if (cf->hs && !strstr(cf->label, " a=")) snprintf(name + j, sizeof name - j, ".a%g", cf->alpha);
    int rc = whole ? asprintf(&path, "%s/%s.json", t->checkpoint_dir, name)
                   : asprintf(&path, "%s/%s.i%d.json", t->checkpoint_dir, name, i0);
    return rc < 0 ? NULL : path;
}

/* fingerprint | heads l.h=alpha,... | items i0+n */
static char *unit_key(const hp_model *m, const hp_sweep_task *t, int i0, int n) {
    size_t nh = (size_t)m->cfg.L * m->cfg.H, len = 0;
    char *heads = malloc(nh * 24 + 1), *key = NULL;
    if (!heads) return NULL;
    heads[0] = 0;
    for (size_t i = 0; i < nh; i++)
        if (m->alpha[i] != 1.0f)
            len += (size_t)sprintf(heads + len, "%zu.%zu=%g,", i / (size_t)m->cfg.H, i % (size_t)m->cfg.H,
                                   m->alpha[i]);
    if (asprintf(&key, "%s|heads %s|items %d+%d", t->fingerprint ? t->fingerprint : "", heads, i0, n) < 0)
        key = NULL;
    free(heads);
    return key;
}

/* The checksum a unit file carries: FNV-1a of its payload printed unformatted (cJSON prints a
 * double the same way each time, so a re-read payload prints to the same bytes). */
static int payload_hash(const cJSON *payload, char out[17]) {
    char *txt = cJSON_PrintUnformatted(payload);
    if (!txt) return -1;
    snprintf(out, 17, "%016llx", (unsigned long long)hp_fnv1a(HP_FNV_OFFSET, txt, strlen(txt)));
    free(txt);
    return 0;
}

/* 1 when the unit's file exists, fits (key, value and answer counts) and checks; values added
 * into vals, answers set. A file that does not check is reported and recomputed. */
static int unit_load(const hp_sweep_task *t, const char *path, const char *key, int n, double *vals,
                     char **answers) {
    if (!hp_file_exists(path)) return 0;
    hp_err e2 = {0};
    cJSON *j = hp_read_json(path, &e2);
    const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "payload") : NULL;
    const cJSON *h = j ? cJSON_GetObjectItemCaseSensitive(j, "hash") : NULL;
    const cJSON *k = p ? cJSON_GetObjectItemCaseSensitive(p, "key") : NULL;
    const cJSON *v = p ? cJSON_GetObjectItemCaseSensitive(p, "values") : NULL;
    const cJSON *a = p ? cJSON_GetObjectItemCaseSensitive(p, "answers") : NULL;
    char hash[17] = "";
    const char *why = NULL;
    if (!j) why = e2.msg;
    else if (!cJSON_IsObject(p) || !cJSON_IsString(h) || payload_hash(p, hash) || strcmp(hash, h->valuestring))
        why = "content does not match its hash (corrupt or edited)";
    else if (!cJSON_IsString(k) || strcmp(k->valuestring, key)) why = NULL; /* other settings: silently stale */
    else if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != t->n_values || !cJSON_IsArray(a) ||
             cJSON_GetArraySize(a) != n)
        why = "wrong number of values or answers";
    int ok = !why && cJSON_IsString(k) && !strcmp(k->valuestring, key);
    for (int i = 0; ok && i < t->n_values; i++)
        if (!cJSON_IsNumber(cJSON_GetArrayItem(v, i))) ok = 0, why = "a value is not a number";
    for (int i = 0; ok && i < n; i++)
        if (!cJSON_IsString(cJSON_GetArrayItem(a, i))) ok = 0, why = "an answer is not a string";
    if (ok) {
        for (int i = 0; i < t->n_values; i++) vals[i] += cJSON_GetArrayItem(v, i)->valuedouble;
        for (int i = 0; i < n && ok; i++)
            if (!(answers[i] = strdup(cJSON_GetArrayItem(a, i)->valuestring))) ok = 0;
    }
    if (why) fprintf(stderr, "warning: checkpoint %s not used: %s; recomputing it\n", path, why);
    cJSON_Delete(j);
    return ok;
}

static int unit_store(const hp_sweep_task *t, const char *path, const char *label, const char *key,
                      const double *vals, char *const *answers, int n, hp_err *e) {
    cJSON *j = cJSON_CreateObject(), *p = cJSON_CreateObject();
    int rc = -1;
    char hash[17];
    if (!j || !p) {
        cJSON_Delete(p);
        goto out;
    }
    cJSON_AddItemToObject(j, "payload", p);
    cJSON_AddStringToObject(p, "label", label);
    cJSON_AddStringToObject(p, "key", key);
    cJSON *v = cJSON_AddArrayToObject(p, "values");
    for (int i = 0; i < t->n_values; i++) cJSON_AddItemToArray(v, cJSON_CreateNumber(vals[i]));
    cJSON *a = cJSON_AddArrayToObject(p, "answers");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(answers[i] ? answers[i] : ""));
    if (payload_hash(p, hash)) goto out;
    cJSON_AddStringToObject(j, "hash", hash);
    char *txt = cJSON_PrintUnformatted(j);
    if (txt) {
        rc = hp_write_file_atomic(path, txt, strlen(txt), e);
        free(txt);
        cJSON_Delete(j);
        return rc;
    }
out:
    cJSON_Delete(j);
    return hp_errf(e, "%s: out of memory", path);
}

/* ---- the run ---- */

void hp_sweep_result_free(hp_sweep_result *r) {
    for (int c = 0; r->answers && c < r->nconf; c++) {
        for (int i = 0; r->answers[c] && i < r->n_items; i++) free(r->answers[c][i]);
        free(r->answers[c]);
    }
    free(r->answers);
    free(r->values);
    memset(r, 0, sizeof *r);
}

static int apply_conf(hp_model *m, const hp_sweep_conf *c, hp_err *e) {
    if (!c->hs) {
        hp_model_clear_edits(m);
        return 0;
    }
    return hp_headset_apply(m, c->hs, c->alpha, e);
}

int hp_sweep_run(hp_model *m, const hp_sweep *s, const hp_sweep_task *t, hp_sweep_result *r, hp_err *e) {
    memset(r, 0, sizeof *r);
    int chunk = t->chunk > 0 && t->chunk < t->n_items ? t->chunk : t->n_items, whole = chunk == t->n_items;
    r->nconf = s->nconf;
    r->n_items = t->n_items;
    r->n_values = t->n_values;
    r->values = calloc((size_t)s->nconf * (size_t)(t->n_values ? t->n_values : 1), sizeof(double));
    r->answers = calloc((size_t)s->nconf, sizeof *r->answers);
    if (!r->values || !r->answers) goto oom;
    for (int c = 0; c < s->nconf; c++)
        if (!(r->answers[c] = calloc((size_t)(t->n_items ? t->n_items : 1), sizeof(char *)))) goto oom;
    if (t->checkpoint_dir && hp_eval_mkdir(t->checkpoint_dir, e)) goto fail;
    hp_progress pb;
    hp_progress_start(&pb, t->name, (long)s->nconf * t->n_items, "items", !t->quiet);
    HP_NVTX_PUSH("sweep");
    int rc = 0;
    double *tmp = malloc(sizeof(double) * (size_t)(t->n_values ? t->n_values : 1));
    if (!tmp) rc = hp_errf(e, "out of memory");
    for (int i0 = 0; i0 < t->n_items && !rc; i0 += chunk) {
        int n = t->n_items - i0 < chunk ? t->n_items - i0 : chunk, prepared = 0;
        for (int c = 0; c < s->nconf && !rc; c++) {
            const hp_sweep_conf *cf = &s->conf[c];
            char *path = NULL, *key = NULL;
            if ((rc = apply_conf(m, cf, e))) break;
            if (t->checkpoint_dir && (!(path = unit_path(t, cf, i0, whole)) || !(key = unit_key(m, t, i0, n)))) {
                free(path);
                rc = hp_errf(e, "out of memory");
                break;
            }
            memset(tmp, 0, sizeof(double) * (size_t)t->n_values);
            if (path && unit_load(t, path, key, n, tmp, r->answers[c] + i0)) {
                r->resumed++;
                if (!t->quiet) fprintf(stderr, "%s: resumed from %s\n", cf->label, path);
            } else {
                if (!prepared && t->prepare && (rc = t->prepare(t->ctx, i0, n, e))) {
                    free(path);
                    free(key);
                    break;
                }
                prepared = 1;
                HP_NVTX_PUSH(cf->label);
                rc = t->score(t->ctx, i0, n, tmp, r->answers[c] + i0, e);
                HP_NVTX_POP();
                if (!rc && path) rc = unit_store(t, path, cf->label, key, tmp, r->answers[c] + i0, n, e);
                r->computed++;
            }
            for (int v = 0; v < t->n_values; v++) r->values[(size_t)c * t->n_values + v] += tmp[v];
            free(path);
            free(key);
            hp_progress_update(&pb, (long)i0 * s->nconf + (long)(c + 1) * n);
        }
        if (prepared && t->release) t->release(t->ctx, i0, n);
    }
    free(tmp);
    HP_NVTX_POP();
    hp_progress_end(&pb);
    hp_model_clear_edits(m);
    if (rc) goto fail;
    return 0;
oom:
    hp_errf(e, "out of memory");
fail:
    hp_model_clear_edits(m);
    hp_sweep_result_free(r);
    return -1;
}

int hp_sweep_curve(const hp_sweep *s, const double *metric, int ai, hp_eval_curve *cv, hp_err *e) {
    double *draws = malloc(sizeof(double) * (size_t)(s->n_random ? s->n_random : 1));
    if (!draws) return hp_errf(e, "out of memory");
    for (int ki = 0; ki < s->nk; ki++) {
        int b = hp_sweep_index(s, ai, ki, 0);
        for (int d = 0; d < s->n_random; d++) draws[d] = metric[b + 2 + d];
        if (hp_eval_curve_set(cv, ki, metric[0], metric[b], metric[b + 1], draws, s->n_random, e)) {
            free(draws);
            return -1;
        }
    }
    free(draws);
    return 0;
}

void hp_sweep_conf_json(const hp_sweep *s, int c, cJSON *row, int with_alpha) {
    const hp_sweep_conf *cf = &s->conf[c];
    if (with_alpha) cJSON_AddNumberToObject(row, "alpha", cf->alpha);
    cJSON_AddNumberToObject(row, "k", cf->k);
    cJSON_AddStringToObject(row, "method", hp_sweep_method_name[cf->method]);
    if (cf->method == HP_SWEEP_RANDOM) {
        cJSON_AddNumberToObject(row, "draw", cf->draw);
        if (cf->short_layers) cJSON_AddNumberToObject(row, "layers_short_of_heads", cf->short_layers);
    }
    char *hstr = cf->hs ? hp_headset_str(cf->hs) : NULL;
    cJSON_AddStringToObject(row, "heads", hstr ? hstr : "");
    free(hstr);
}
