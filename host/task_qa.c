/* task_qa.c: the question-answering task (`eval --task qa`, and the QA tasks of `run`): greedy
 * short answers to the paper's QA prompt, scored by SQuAD F1 / exact match, separately for
 * concept (country) and other questions, normalised to the unedited model; SOMP heads vs
 * Logit-Lens heads vs random controls through the edit sweep (host/sweep.h). JSON + CSV + SVGs. */
#include "task_qa.h"

#include "fileio.h"
#include "metrics.h"
#include "sweep.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct eval_ctx {
    hp_model *m;
    const hp_qa_set *set;
    const hp_prompts *p;
    int max_new, batch;
} eval_ctx;

/* Mean F1 / EM for country and other questions under the model's current edits. */
typedef struct kind_scores {
    double f1[2], em[2], match[2]; /* [0] country, [1] other */
    int n[2];
} kind_scores;

/* The sweep's raw totals per configuration: per kind (country, other) F1, EM, match, count. */
enum { QA_VALUES = 8 };
static kind_scores kind_of(const double *v) {
    kind_scores ks;
    for (int q = 0; q < 2; q++) {
        int n = (int)v[4 * q + 3];
        ks.n[q] = n;
        ks.f1[q] = n ? v[4 * q] / n : 0.0;
        ks.em[q] = n ? v[4 * q + 1] / n : 0.0;
        ks.match[q] = n ? v[4 * q + 2] / n : 0.0;
    }
    return ks;
}

/* hp_sweep_task.score: questions [i0, i0+n) answered greedily in batches under the current edits. */
static int qa_score(void *ctx, int i0, int n, double *vals, char **answers, hp_err *e) {
    const eval_ctx *c = ctx;
    const hp_prompts *p = c->p;
    int32_t **outs = calloc((size_t)c->batch, sizeof *outs);
    int *outn = calloc((size_t)c->batch, sizeof *outn), rc = 0;
    if (!outs || !outn) {
        free(outs);
        free(outn);
        return hp_errf(e, "out of memory");
    }
    for (int b0 = i0; b0 < i0 + n && !rc; b0 += c->batch) {
        int nb = i0 + n - b0 < c->batch ? i0 + n - b0 : c->batch;
        rc = hp_generate(c->m, nb, (const int32_t *const *)p->ids + b0, p->len + b0, NULL, c->max_new, 0, outs,
                         outn, 0, e);
        for (int b = 0; b < nb && !rc; b++) {
            char *text = hp_tok_decode(c->m->tok, outs[b], outn[b], 1);
            if (!text) {
                rc = hp_errf(e, "out of memory");
                break;
            }
            char *nl = strchr(text, '\n'); /* the answer is the first line */
            if (nl) *nl = 0;
            /* ... up to where a base model (no chat template) starts the next question of the
             * prompt's own "Question: ... Answer:" pattern. */
            char *nq = strstr(text, "Question:");
            if (nq) *nq = 0;
            const hp_qa_item *it = &c->set->items[b0 + b];
            double em, f1;
            if (hp_qa_score(text, (const char *const *)it->answers, it->n_answers, &em, &f1)) {
                free(text);
                rc = hp_errf(e, "out of memory");
                break;
            }
            int k = it->kind == HP_QA_COUNTRY ? 0 : 1;
            vals[4 * k] += f1;
            vals[4 * k + 1] += em;
            vals[4 * k + 2] += hp_qa_contains(text, (const char *const *)it->answers, it->n_answers);
            vals[4 * k + 3] += 1;
            answers[b0 + b - i0] = text;
        }
        for (int b = 0; b < nb; b++) {
            free(outs[b]);
            outs[b] = NULL;
        }
    }
    free(outs);
    free(outn);
    return rc;
}

/* The two scores the summary reports: SQuAD F1 (the paper's) and answer match (a normalised
 * accepted answer occurs in the normalised reply: small chat models answer in sentences). */
enum { M_F1 = 0, M_MATCH = 1 };
static const char *metric_name[2] = {"f1", "match"};
static double metric_of(const kind_scores *k, int metric, int q) {
    return metric == M_F1 ? k->f1[q] : k->match[q];
}

static void add_scores(cJSON *r, const kind_scores *k, const kind_scores *base) {
    cJSON_AddNumberToObject(r, "f1_country", k->f1[0]);
    cJSON_AddNumberToObject(r, "f1_other", k->f1[1]);
    cJSON_AddNumberToObject(r, "em_country", k->em[0]);
    cJSON_AddNumberToObject(r, "em_other", k->em[1]);
    cJSON_AddNumberToObject(r, "match_country", k->match[0]);
    cJSON_AddNumberToObject(r, "match_other", k->match[1]);
    if (base) {
        cJSON_AddNumberToObject(r, "norm_f1_country", hp_eval_ratio(k->f1[0], base->f1[0]));
        cJSON_AddNumberToObject(r, "norm_f1_other", hp_eval_ratio(k->f1[1], base->f1[1]));
        cJSON_AddNumberToObject(r, "norm_match_country", hp_eval_ratio(k->match[0], base->match[0]));
        cJSON_AddNumberToObject(r, "norm_match_other", hp_eval_ratio(k->match[1], base->match[1]));
    }
}

/* j["unedited"]: the unedited model's scores and question counts. */
static void add_unedited(cJSON *j, const kind_scores *base) {
    cJSON *bj = cJSON_AddObjectToObject(j, "unedited");
    add_scores(bj, base, NULL);
    cJSON_AddNumberToObject(bj, "n_country", base->n[0]);
    cJSON_AddNumberToObject(bj, "n_other", base->n[1]);
}

/* j["unedited_answers"]: each question with its kind and the unedited model's answer. */
static void add_answers(cJSON *j, const hp_qa_set *set, char **answers) {
    cJSON *aj = cJSON_AddArrayToObject(j, "unedited_answers");
    for (int i = 0; i < set->n; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "question", set->items[i].question);
        cJSON_AddStringToObject(a, "kind", hp_qa_kind_name(set->items[i].kind));
        cJSON_AddStringToObject(a, "answer", answers[i] ? answers[i] : "");
        cJSON_AddItemToArray(aj, a);
    }
}

int hp_task_qa(hp_model *m, const hp_qa_task *t, hp_err *e) {
    const char *data = t->data, *edit = t->ranking, *countries = t->countries, *outdir = t->outdir, *task = "qa";
    const int *ks = t->ks;
    int nk = t->nk, n_random = t->n_random, max_new = t->max_new, limit = t->limit, batch = t->batch;
    int chat = t->chat, quiet = t->quiet, max_prompt = t->max_prompt;
    float alpha = t->alpha;
    uint64_t seed = t->seed;
    hp_qa_set set = {0};
    hp_prompts p = {0};
    hp_ranking rk = {0};
    hp_wordlist wl = {0};
    cJSON *j = NULL;
    char **base_answers = NULL, *fingerprint = NULL;
    hp_sweep sw = {0};
    hp_sweep_result res = {0};
    int rc = 1, n_all = 0;
    char *json_path = hp_eval_path(outdir, "eval.json"), *csv_path = hp_eval_path(outdir, "eval.csv");
    char *svg_path = hp_eval_path(outdir, "f1_vs_k.svg"), *heat_path = hp_eval_path(outdir, "heads_heatmap.svg");
    char *match_path = hp_eval_path(outdir, "match_vs_k.svg");
    if (!m->tok) {
        hp_errf(e, "%s: the model has no tokenizer", t->model_path);
        goto done;
    }
    if (hp_eval_mkdir(outdir, e)) goto done;
    if (hp_qa_load(data, &set, e) || (edit && hp_ranking_load(edit, &rk, e))) goto done;
    int max_k = 0;
    for (int i = 0; i < nk; i++)
        if (ks[i] > max_k) max_k = ks[i];
    if (edit && hp_ranking_check(&rk, edit, m->cfg.L, m->cfg.H, max_k, e)) goto done;
    if (countries) {
        if (hp_wordlist_load(countries, &wl, e) || hp_qa_mark_kind(&set, &wl) < 0) goto done;
    }
    n_all = set.n;
    if (limit > 0 && limit < set.n) set.n = limit;
    if (hp_qa_prompts(m, &set, chat, hp_prompt_cap(m, max_prompt), data, &p, e)) goto done;
    /* alpha is not in it: the edited heads' alphas are in every checkpoint's key, and the
     * unedited run is shared by all alphas. */
    if (asprintf(&fingerprint, "model %s|data %s|questions %d|max_new %d|chat %d|prompt %s%s%s",
                 t->model_path, data, set.n, max_new, chat, HP_QA_PROMPT, t->fingerprint ? "|" : "",
                 t->fingerprint ? t->fingerprint : "") < 0) {
        fingerprint = NULL;
        hp_errf(e, "out of memory");
        goto done;
    }
    eval_ctx ctx = {.m = m, .set = &set, .p = &p, .max_new = max_new, .batch = batch};
    char *runs_dir = t->checkpoint_dir ? strdup(t->checkpoint_dir) : hp_eval_path(outdir, "runs");
    if (!runs_dir) {
        hp_errf(e, "out of memory");
        goto done;
    }
    hp_sweep_task task_def = {.name = "qa", .n_items = p.B, .n_values = QA_VALUES, .ctx = &ctx,
                              .score = qa_score, .checkpoint_dir = runs_dir, .fingerprint = fingerprint,
                              .quiet = quiet};
    int sweep_rc = hp_sweep_plan(&sw, edit ? &rk : NULL, m->cfg.L, m->cfg.H, ks, nk, &alpha, 1, n_random, seed, e);
    if (!sweep_rc) sweep_rc = hp_sweep_run(m, &sw, &task_def, &res, e);
    free(runs_dir);
    if (sweep_rc) goto done;
    base_answers = res.answers[0];
    kind_scores base = kind_of(res.values);
    if (!quiet)
        fprintf(stderr, "unedited: F1 country %.3f (n=%d), other %.3f (n=%d); answer match %.3f / %.3f\n",
                base.f1[0], base.n[0], base.f1[1], base.n[1], base.match[0], base.match[1]);
    if (!edit) { /* the unedited model only: its scores and answers */
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", t->model_path);
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddNumberToObject(j, "questions", set.n);
        cJSON_AddNumberToObject(j, "max_new", max_new);
        cJSON_AddStringToObject(j, "prompt", HP_QA_PROMPT);
        cJSON_AddBoolToObject(j, "chat", chat);
        add_unedited(j, &base);
        add_answers(j, &set, base_answers);
        char *js = cJSON_Print(j);
        char *bpath = hp_eval_path(outdir, "baseline.json");
        int bad = !js || !bpath || hp_write_file_atomic(bpath, js, strlen(js), e);
        if (!bad) printf("unedited model only (no --edit): wrote %s\n", bpath);
        free(js);
        free(bpath);
        if (!bad) rc = 0;
        goto done;
    }
    if (base.n[0] == 0 || base.n[1] == 0)
        fprintf(stderr, "warning: no %s questions in %s: that column is empty\n", base.n[0] ? "other" : "country", data);
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", t->model_path);
    cJSON_AddStringToObject(j, "task", task);
    cJSON_AddStringToObject(j, "data", data);
    cJSON_AddStringToObject(j, "ranking", edit);
    cJSON_AddNumberToObject(j, "alpha", alpha);
    cJSON_AddNumberToObject(j, "random_draws", n_random);
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON_AddNumberToObject(j, "questions", set.n);
    cJSON_AddStringToObject(j, "prompt", HP_QA_PROMPT);
    cJSON_AddBoolToObject(j, "chat", chat);
    add_unedited(j, &base);
    cJSON *rows = cJSON_AddArrayToObject(j, "results");
    for (int c = 1; c < sw.nconf; c++) {
        kind_scores kc = kind_of(res.values + (size_t)c * QA_VALUES);
        cJSON *r = cJSON_CreateObject();
        hp_sweep_conf_json(&sw, c, r, 0);
        add_scores(r, &kc, &base);
        cJSON_AddItemToArray(rows, r);
        if (!quiet && sw.conf[c].method != HP_SWEEP_RANDOM)
            fprintf(stderr, "%s: normalised F1 country %.3f, other %.3f\n", sw.conf[c].label,
                    hp_eval_ratio(kc.f1[0], base.f1[0]), hp_eval_ratio(kc.f1[1], base.f1[1]));
    }
    /* Summary: normalised score, country / other x SOMP / LL / random median [IQR] x k, for
     * F1 and for answer match; one line chart each. */
    hp_atomic_file af;
    if (hp_atomic_open(&af, csv_path, e)) goto done;
    fprintf(af.f, "metric,k,questions,somp,logit_lens,random_median,random_q25,random_q75\n");
    cJSON *sum = cJSON_AddArrayToObject(j, "summary");
    hp_eval_curve cv[2][2]; /* [metric][country, other] */
    double *metric = malloc(sizeof(double) * (size_t)sw.nconf);
    if (!metric) {
        hp_atomic_abort(&af);
        hp_errf(e, "out of memory");
        goto done;
    }
    for (int mt = 0; mt < 2; mt++)
        for (int q = 0; q < 2; q++) {
            for (int c = 0; c < sw.nconf; c++) {
                kind_scores kc = kind_of(res.values + (size_t)c * QA_VALUES);
                metric[c] = metric_of(&kc, mt, q);
            }
            if (hp_sweep_curve(&sw, metric, 0, &cv[mt][q], e)) {
                free(metric);
                hp_atomic_abort(&af);
                goto done;
            }
        }
    free(metric);
    for (int mt = 0; mt < 2; mt++)
        for (int ki = 0; ki < nk; ki++)
            for (int q = 0; q < 2; q++) {
                fprintf(af.f, "%s,%d,%s", metric_name[mt], ks[ki], q ? "other" : "country");
                hp_eval_curve_csv(af.f, &cv[mt][q], ki);
                cJSON *r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "metric", metric_name[mt]);
                cJSON_AddNumberToObject(r, "k", ks[ki]);
                cJSON_AddStringToObject(r, "questions", q ? "other" : "country");
                hp_eval_curve_json(r, &cv[mt][q], ki);
                cJSON_AddItemToArray(sum, r);
            }
    add_answers(j, &set, base_answers);
    char *js = cJSON_Print(j);
    if (!js || hp_atomic_commit(&af, e) || hp_write_file_atomic(json_path, js, strlen(js), e)) {
        free(js);
        goto done;
    }
    free(js);
    static const char *const groups[2] = {"country questions", "other questions"}, *shorts[2] = {"country", "other"};
    for (int mt = 0; mt < 2; mt++) {
        char title[160], ylabel[64];
        snprintf(title, sizeof title, "QA %s with k heads scaled by %g (normalised to the unedited model)",
                 mt == M_F1 ? "F1" : "answer match", alpha);
        snprintf(ylabel, sizeof ylabel, "%s edited / %s unedited", mt == M_F1 ? "F1" : "match",
                 mt == M_F1 ? "F1" : "match");
        if (hp_eval_plot(mt == M_F1 ? svg_path : match_path, title, ylabel, ks, nk, cv[mt], groups, shorts, 2,
                         n_random > 0, e))
            goto done;
    }
    if (hp_eval_heatmap(heat_path, &rk, ks[nk - 1], e)) goto done;
    if (!quiet) fprintf(stderr, "wrote %s, %s, %s, %s, %s\n", json_path, csv_path, svg_path, match_path, heat_path);
    for (int mt = 0; mt < 2; mt++) {
        printf("normalised %s (unedited: country %.3f, other %.3f; %d questions)\n", mt ? "answer match" : "F1",
               metric_of(&base, mt, 0), metric_of(&base, mt, 1), set.n);
        printf("%4s %-8s %8s %8s %18s\n", "k", "kind", "SOMP", "LL", "random med [IQR]");
        for (int ki = 0; ki < nk; ki++)
            for (int q = 0; q < 2; q++)
                printf("%4d %-8s %8.3f %8.3f %8.3f [%.2f,%.2f]\n", ks[ki], q ? "other" : "country", cv[mt][q].somp[ki],
                       cv[mt][q].ll[ki], cv[mt][q].rnd_median[ki], cv[mt][q].rnd_q25[ki], cv[mt][q].rnd_q75[ki]);
    }
    rc = 0;
done:
    hp_sweep_result_free(&res);
    hp_sweep_free(&sw);
    cJSON_Delete(j);
    free(json_path);
    free(csv_path);
    free(svg_path);
    free(heat_path);
    free(match_path);
    free(fingerprint);
    if (n_all) set.n = n_all;
    hp_qa_free(&set);
    hp_prompts_free(&p);
    hp_ranking_free(&rk);
    hp_wordlist_free(&wl);
    return rc ? -1 : 0;
}
