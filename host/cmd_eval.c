/* cmd_eval.c: `eval --task qa`: greedy short answers to the paper's QA prompt, scored by SQuAD
 * F1 / exact match, separately for concept (country) and other questions, normalised to the
 * unedited model; SOMP heads vs Logit-Lens heads vs random controls (same per-layer counts,
 * disjoint from the SOMP heads), for each number of edited heads k. JSON + CSV + two SVGs. */
#include "commands.h"
#include "eval_report.h"
#include "experiment.h"
#include "fileio.h"
#include "metrics.h"
#include "progress.h"

#include <cJSON.h>
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { E_TASK = 3000, E_DATA, E_EDIT, E_TOP, E_ALPHA, E_RANDOM, E_SEED, E_OUTDIR, E_MAXNEW, E_LIMIT,
       E_BATCH, E_DEVICE, E_NOCHAT, E_COUNTRIES, E_QUIET, E_HELP, E_MAXPROMPT };

typedef struct eval_ctx {
    hp_model *m;
    const hp_qa_set *set;
    const hp_prompts *p;
    int max_new, batch, quiet;
    const char *outdir; /* DIR/runs/ keeps each finished configuration: a re-run resumes */
    const char *fingerprint; /* model, data, questions, budget, template, alpha */
} eval_ctx;

/* Mean F1 / EM for country and other questions under the model's current edits. */
typedef struct kind_scores {
    double f1[2], em[2], match[2]; /* [0] country, [1] other */
    int n[2];
} kind_scores;

/* DIR/runs/<label>.json: one finished configuration (its scores and answers), valid while its fingerprint (the run's settings and the edited heads) is unchanged. */
static char *run_cache_path(const eval_ctx *c, const char *label) {
    char *path = NULL, name[96];
    size_t j = 0;
    for (const char *q = label; *q && j + 1 < sizeof name; q++)
        name[j++] = (isalnum((unsigned char)*q) || *q == '-') ? *q : '_';
    name[j] = 0;
    if (asprintf(&path, "%s/runs/%s.json", c->outdir, name) < 0) return NULL;
    return path;
}

static char *run_key(const eval_ctx *c) {
    char *heads = NULL, *key = NULL;
    size_t n = (size_t)c->m->cfg.L * c->m->cfg.H, len = 0;
    heads = malloc(n * 24 + 1);
    if (!heads) return NULL;
    heads[0] = 0;
    for (size_t i = 0; i < n; i++)
        if (c->m->alpha[i] != 1.0f)
            len += (size_t)sprintf(heads + len, "%zu.%zu=%g,", i / (size_t)c->m->cfg.H,
                                   i % (size_t)c->m->cfg.H, c->m->alpha[i]);
    if (asprintf(&key, "%s|heads %s", c->fingerprint, heads) < 0) key = NULL;
    free(heads);
    return key;
}

static int run_cache_load(const eval_ctx *c, const char *label, kind_scores *ks, char ***answers_out) {
    char *path = run_cache_path(c, label), *key = run_key(c);
    hp_err e2 = {0};
    cJSON *j = path && key && hp_file_exists(path) ? hp_read_json(path, &e2) : NULL;
    int ok = 0;
    const cJSON *k = j ? cJSON_GetObjectItemCaseSensitive(j, "key") : NULL;
    const cJSON *sc = j ? cJSON_GetObjectItemCaseSensitive(j, "scores") : NULL;
    const cJSON *an = j ? cJSON_GetObjectItemCaseSensitive(j, "answers") : NULL;
    if (cJSON_IsString(k) && !strcmp(k->valuestring, key) && cJSON_IsArray(sc) &&
        cJSON_GetArraySize(sc) == 8 && (!answers_out || (cJSON_IsArray(an) && cJSON_GetArraySize(an) == c->p->B))) {
        double v[8];
        for (int i = 0; i < 8; i++) v[i] = cJSON_GetArrayItem(sc, i)->valuedouble;
        for (int q = 0; q < 2; q++) {
            ks->f1[q] = v[4 * q];
            ks->em[q] = v[4 * q + 1];
            ks->match[q] = v[4 * q + 2];
            ks->n[q] = (int)v[4 * q + 3];
        }
        ok = 1;
        if (answers_out) {
            char **a = calloc((size_t)c->p->B, sizeof(char *));
            for (int i = 0; a && i < c->p->B; i++) {
                const cJSON *s = cJSON_GetArrayItem(an, i);
                a[i] = strdup(cJSON_IsString(s) ? s->valuestring : "");
            }
            *answers_out = a;
            ok = a != NULL;
        }
    }
    if (ok && !c->quiet) fprintf(stderr, "%s: resumed from %s\n", label, path);
    cJSON_Delete(j);
    free(path);
    free(key);
    return ok;
}

static int run_cache_store(const eval_ctx *c, const char *label, const kind_scores *ks, char **answers,
                           hp_err *e) {
    char *path = run_cache_path(c, label), *key = run_key(c), *dir = NULL;
    cJSON *j = cJSON_CreateObject();
    int rc = -1;
    if (!path || !key || !j || asprintf(&dir, "%s/runs", c->outdir) < 0) {
        hp_errf(e, "out of memory");
        goto out;
    }
    if (hp_eval_mkdir(dir, e)) goto out;
    cJSON_AddStringToObject(j, "label", label);
    cJSON_AddStringToObject(j, "key", key);
    cJSON *sc = cJSON_AddArrayToObject(j, "scores"); /* per kind: f1, em, match, n */
    for (int q = 0; q < 2; q++) {
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(ks->f1[q]));
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(ks->em[q]));
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(ks->match[q]));
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(ks->n[q]));
    }
    if (answers) {
        cJSON *an = cJSON_AddArrayToObject(j, "answers");
        for (int i = 0; i < c->p->B; i++) cJSON_AddItemToArray(an, cJSON_CreateString(answers[i] ? answers[i] : ""));
    }
    char *txt = cJSON_PrintUnformatted(j);
    rc = txt ? hp_write_file_atomic(path, txt, strlen(txt), e) : hp_errf(e, "out of memory");
    free(txt);
out:
    cJSON_Delete(j);
    free(path);
    free(key);
    free(dir);
    return rc;
}

static int run_qa_fresh(const eval_ctx *c, const char *label, kind_scores *ks, char ***answers_out,
                        hp_err *e);

/* One configuration (the model's current edits): from DIR/runs/ when it finished before, else
 * generated and stored there. */
static int run_qa(const eval_ctx *c, const char *label, kind_scores *ks, char ***answers_out, hp_err *e) {
    memset(ks, 0, sizeof *ks);
    if (c->outdir && run_cache_load(c, label, ks, answers_out)) return 0;
    char **tmp = NULL;
    if (run_qa_fresh(c, label, ks, &tmp, e)) return -1;
    int rc = c->outdir ? run_cache_store(c, label, ks, tmp, e) : 0; /* answers kept for reading */
    if (answers_out) {
        *answers_out = tmp;
    } else {
        for (int i = 0; tmp && i < c->p->B; i++) free(tmp[i]);
        free(tmp);
    }
    return rc;
}

static int run_qa_fresh(const eval_ctx *c, const char *label, kind_scores *ks, char ***answers_out,
                        hp_err *e) {
    memset(ks, 0, sizeof *ks);
    const hp_prompts *p = c->p;
    char **answers = answers_out ? calloc((size_t)p->B, sizeof(char *)) : NULL;
    int32_t **outs = calloc((size_t)c->batch, sizeof *outs);
    int *outn = calloc((size_t)c->batch, sizeof *outn);
    if (!outs || !outn || (answers_out && !answers)) {
        free(outs);
        free(outn);
        free(answers);
        return hp_errf(e, "out of memory");
    }
    hp_progress pb;
    hp_progress_start(&pb, label, p->B, "q", !c->quiet);
    int rc = 0;
    for (int b0 = 0; b0 < p->B && !rc; b0 += c->batch) {
        int nb = p->B - b0 < c->batch ? p->B - b0 : c->batch;
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
            ks->f1[k] += f1;
            ks->em[k] += em;
            ks->match[k] += hp_qa_contains(text, (const char *const *)it->answers, it->n_answers);
            ks->n[k]++;
            if (answers) answers[b0 + b] = text;
            else free(text);
        }
        for (int b = 0; b < nb; b++) free(outs[b]);
        hp_progress_update(&pb, b0 + nb);
    }
    hp_progress_end(&pb);
    free(outs);
    free(outn);
    for (int k = 0; k < 2; k++)
        if (ks->n[k]) {
            ks->f1[k] /= ks->n[k];
            ks->em[k] /= ks->n[k];
            ks->match[k] /= ks->n[k];
        }
    if (answers_out) *answers_out = answers;
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

int cmd_eval(int argc, char **argv) {
    static const struct option lo[] = {
        {"task", required_argument, 0, E_TASK},     {"data", required_argument, 0, E_DATA},
        {"edit", required_argument, 0, E_EDIT},     {"top", required_argument, 0, E_TOP},
        {"alpha", required_argument, 0, E_ALPHA},   {"random", required_argument, 0, E_RANDOM},
        {"seed", required_argument, 0, E_SEED},     {"out-dir", required_argument, 0, E_OUTDIR},
        {"max-new", required_argument, 0, E_MAXNEW}, {"limit", required_argument, 0, E_LIMIT},
        {"batch", required_argument, 0, E_BATCH},   {"device", required_argument, 0, E_DEVICE},
        {"no-chat", no_argument, 0, E_NOCHAT},      {"countries", required_argument, 0, E_COUNTRIES},
        {"quiet", no_argument, 0, E_QUIET},         {"help", no_argument, 0, E_HELP},
        {"max-prompt-tokens", required_argument, 0, E_MAXPROMPT}, {0}};
    const char *task = "qa", *data = NULL, *edit = NULL, *tops = "8,16,32", *outdir = "results/eval";
    const char *device = "auto", *countries = NULL;
    float alpha = -1.0f;
    int n_random = 10, max_new = 16, limit = 0, batch = 32, chat = 1, quiet = 0, max_prompt = 0, c;
    unsigned long long seed = 0;
    if (strcmp(hp_eval_task(argc, argv), "qa")) return cmd_eval_vision(argc, argv);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case E_TASK: task = optarg; break;
        case E_DATA: data = optarg; break;
        case E_EDIT: edit = optarg; break;
        case E_TOP: tops = optarg; break;
        case E_ALPHA:
            if (hp_opt_float("eval", "--alpha", optarg, -HUGE_VAL, HUGE_VAL, &alpha)) return 2;
            break;
        case E_RANDOM:
            if (hp_opt_int("eval", "--random", optarg, 0, INT_MAX, &n_random)) return 2;
            break;
        case E_SEED:
            if (hp_opt_u64("eval", "--seed", optarg, &seed)) return 2;
            break;
        case E_OUTDIR: outdir = optarg; break;
        case E_MAXNEW:
            if (hp_opt_int("eval", "--max-new", optarg, 1, INT_MAX, &max_new)) return 2;
            break;
        case E_LIMIT:
            if (hp_opt_int("eval", "--limit", optarg, 0, INT_MAX, &limit)) return 2;
            break;
        case E_BATCH:
            if (hp_opt_int("eval", "--batch", optarg, 1, INT_MAX, &batch)) return 2;
            break;
        case E_DEVICE: device = optarg; break;
        case E_NOCHAT: chat = 0; break;
        case E_COUNTRIES: countries = optarg; break;
        case E_QUIET: quiet = 1; break;
        case E_MAXPROMPT:
            if (hp_opt_int("eval", "--max-prompt-tokens", optarg, 1, INT_MAX, &max_prompt)) return 2;
            break;
        case E_HELP:
            printf("usage: headpursuit eval MODEL --task qa --data test.jsonl --edit ranking.json\n"
                   "                 [--top 8,16,32] [--alpha -1] [--random 10] [--seed S] [--out-dir DIR]\n"
                   "Answers each question greedily (PAPER.md prompt, at most --max-new tokens; the answer is\n"
                   "the reply's first line, cut where a base model starts a new \"Question:\"),\n"
                   "scores SQuAD F1 / exact match for concept (country) and other questions, normalised to\n"
                   "the unedited model, with the top-k SOMP heads, the top-k Logit-Lens heads and --random\n"
                   "random controls (same per-layer counts as the SOMP heads, disjoint from them) edited by\n"
                   "--alpha. Writes DIR/eval.json, DIR/eval.csv, DIR/f1_vs_k.svg, DIR/match_vs_k.svg,\n"
                   "DIR/heads_heatmap.svg. Answer match: an accepted answer occurs in the reply.\n"
                   "Without --edit only the unedited model runs (DIR/baseline.json: scores and answers).\n"
                   "Each finished configuration is kept in DIR/runs/: a re-run with the same settings\n"
                   "resumes where a killed one stopped.\n"
                   "  --task classify|caption   LLaVA image tasks (see eval --task classify --help)\n"
                   "  --countries FILE   mark questions whose answer is in this list as country questions\n"
                   "                     (needed for TriviaQA files; JSONL from build_qa.py has kinds)\n"
                   "  --max-new N        answer budget in tokens (default 16: chat models often open with\n"
                   "                     a phrase like \"The answer is:\"; 8 cut 12 of SmolLM2's 40 country\n"
                   "                     answers short); the answer is the first line of the reply\n"
                   "  --limit N          first N questions only\n"
                   "  --batch B          questions per generation batch (default 32)\n"
                   "  --no-chat          raw prompts instead of the model's chat template\n"
                   "  --max-prompt-tokens N  refuse (naming the record) a prompt of more than N tokens\n"
                   "                     (default: the model's context length, if known)\n"
                   "  --device D         auto, cpu or cuda\n");
            return 0;
        default: return hp_opt_unknown("eval");
        }
    }
    int ks[HP_EVAL_MAX_K], nk = 0;
    if (hp_eval_parse_tops(tops, ks, &nk)) {
        fprintf(stderr, "headpursuit eval: --top '%s': expected up to %d increasing integers >= 1, comma-separated "
                        "(like 8,16,32)\n", tops, HP_EVAL_MAX_K);
        return 2;
    }
    if (hp_opt_one_arg("eval", "MODEL", argc, argv)) return 2;
    if (!data) {
        fprintf(stderr, "headpursuit eval: need --data test.jsonl (see headpursuit eval --help)\n");
        return 2;
    }
    /* Every input file, before the model loads. */
    if (hp_opt_qa_file("eval", "--data", data) || (edit && hp_opt_input("eval", "--edit", edit, 0)) ||
        (countries && hp_opt_words_file("eval", "--countries", countries)))
        return 2;
    hp_err e = {0};
    hp_model *m = hp_cli_open(argv[optind], device, quiet, &e);
    if (!m) return hp_cli_fail(&e);
    hp_qa_set set = {0};
    hp_prompts p = {0};
    hp_ranking rk = {0};
    hp_wordlist wl = {0};
    cJSON *j = NULL;
    char **base_answers = NULL, *fingerprint = NULL;
    int rc = 1, n_all = 0;
    char *json_path = hp_eval_path(outdir, "eval.json"), *csv_path = hp_eval_path(outdir, "eval.csv");
    char *svg_path = hp_eval_path(outdir, "f1_vs_k.svg"), *heat_path = hp_eval_path(outdir, "heads_heatmap.svg");
    char *match_path = hp_eval_path(outdir, "match_vs_k.svg");
    if (!m->tok) {
        hp_errf(&e, "%s: the model has no tokenizer", argv[optind]);
        goto done;
    }
    if (hp_eval_mkdir(outdir, &e)) goto done;
    if (hp_qa_load(data, &set, &e) || (edit && hp_ranking_load(edit, &rk, &e))) goto done;
    int max_k = 0;
    for (int i = 0; i < nk; i++)
        if (ks[i] > max_k) max_k = ks[i];
    if (edit && hp_ranking_check(&rk, edit, m->cfg.L, m->cfg.H, max_k, &e)) goto done;
    if (countries) {
        if (hp_wordlist_load(countries, &wl, &e) || hp_qa_mark_kind(&set, &wl) < 0) goto done;
    }
    n_all = set.n;
    if (limit > 0 && limit < set.n) set.n = limit;
    if (hp_qa_prompts(m, &set, chat, hp_prompt_cap(m, max_prompt), data, &p, &e)) goto done;
    if (asprintf(&fingerprint, "model %s|data %s|questions %d|max_new %d|chat %d|alpha %g|prompt %s",
                 argv[optind], data, set.n, max_new, chat, alpha, HP_QA_PROMPT) < 0) {
        fingerprint = NULL;
        hp_errf(&e, "out of memory");
        goto done;
    }
    eval_ctx ctx = {.m = m, .set = &set, .p = &p, .max_new = max_new, .batch = batch, .quiet = quiet,
                    .outdir = outdir, .fingerprint = fingerprint};
    kind_scores base;
    hp_model_clear_edits(m);
    if (run_qa(&ctx, "unedited", &base, &base_answers, &e)) goto done;
    if (!quiet)
        fprintf(stderr, "unedited: F1 country %.3f (n=%d), other %.3f (n=%d); answer match %.3f / %.3f\n",
                base.f1[0], base.n[0], base.f1[1], base.n[1], base.match[0], base.match[1]);
    if (!edit) { /* the unedited model only: its scores and answers */
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", argv[optind]);
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddNumberToObject(j, "questions", set.n);
        cJSON_AddNumberToObject(j, "max_new", max_new);
        cJSON_AddStringToObject(j, "prompt", HP_QA_PROMPT);
        cJSON_AddBoolToObject(j, "chat", chat);
        add_unedited(j, &base);
        add_answers(j, &set, base_answers);
        char *js = cJSON_Print(j);
        char *bpath = hp_eval_path(outdir, "baseline.json");
        int bad = !js || !bpath || hp_write_file_atomic(bpath, js, strlen(js), &e);
        if (!bad) printf("unedited model only (no --edit): wrote %s\n", bpath);
        free(js);
        free(bpath);
        if (!bad) rc = 0;
        goto done;
    }
    if (base.n[0] == 0 || base.n[1] == 0)
        fprintf(stderr, "warning: no %s questions in %s: that column is empty\n", base.n[0] ? "other" : "country", data);
    /* Results: [k][method] with method 0 SOMP, 1 LL; random: [k][draw]. */
    kind_scores res[HP_EVAL_MAX_K][2];
    kind_scores *rres = calloc((size_t)nk * (n_random ? n_random : 1), sizeof(kind_scores));
    if (!rres) {
        free(rres);
        hp_errf(&e, "out of memory");
        goto done;
    }
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", argv[optind]);
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
    uint64_t rng = seed ^ 0x5eed5eedull;
    for (int ki = 0; ki < nk; ki++) {
        int k = ks[ki];
        hp_headset hs = {0}, hl = {0};
        char label[64];
        if (hp_headset_top((const int(*)[2])rk.somp, rk.n, k, &hs, &e) ||
            hp_headset_top((const int(*)[2])rk.ll, rk.n, k, &hl, &e)) {
            hp_headset_free(&hs);
            free(rres);
            goto done;
        }
        const char *mname[2] = {"somp", "logit_lens"};
        hp_headset *sets[2] = {&hs, &hl};
        for (int mi = 0; mi < 2; mi++) {
            snprintf(label, sizeof label, "%s k=%d", mi ? "LL" : "SOMP", k);
            if (hp_headset_apply(m, sets[mi], alpha, &e) || run_qa(&ctx, label, &res[ki][mi], NULL, &e)) {
                hp_headset_free(&hs);
                hp_headset_free(&hl);
                free(rres);
                goto done;
            }
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "k", k);
            cJSON_AddStringToObject(r, "method", mname[mi]);
            char *hstr = hp_headset_str(sets[mi]);
            cJSON_AddStringToObject(r, "heads", hstr ? hstr : "");
            free(hstr);
            add_scores(r, &res[ki][mi], &base);
            cJSON_AddItemToArray(rows, r);
            if (!quiet)
                fprintf(stderr, "%s: normalised F1 country %.3f, other %.3f\n", label,
                        hp_eval_ratio(res[ki][mi].f1[0], base.f1[0]), hp_eval_ratio(res[ki][mi].f1[1], base.f1[1]));
        }
        for (int d = 0; d < n_random; d++) {
            hp_headset hr = {0};
            int short_layers = 0;
            snprintf(label, sizeof label, "random %d/%d k=%d", d + 1, n_random, k);
            kind_scores *s = &rres[ki * n_random + d];
            if (hp_headset_random(&hs, m->cfg.L, m->cfg.H, &rng, &hr, &short_layers, &e) ||
                hp_headset_apply(m, &hr, alpha, &e) || run_qa(&ctx, label, s, NULL, &e)) {
                hp_headset_free(&hr);
                hp_headset_free(&hs);
                hp_headset_free(&hl);
                free(rres);
                goto done;
            }
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "k", k);
            cJSON_AddStringToObject(r, "method", "random");
            cJSON_AddNumberToObject(r, "draw", d);
            char *hstr = hp_headset_str(&hr);
            cJSON_AddStringToObject(r, "heads", hstr ? hstr : "");
            free(hstr);
            if (short_layers) cJSON_AddNumberToObject(r, "layers_short_of_heads", short_layers);
            add_scores(r, s, &base);
            cJSON_AddItemToArray(rows, r);
            hp_headset_free(&hr);
        }
        hp_headset_free(&hs);
        hp_headset_free(&hl);
    }
    hp_model_clear_edits(m);
    /* Summary: normalised score, country / other x SOMP / LL / random median [IQR] x k, for
     * F1 and for answer match; one line chart each. */
    hp_atomic_file af;
    if (hp_atomic_open(&af, csv_path, &e)) {
        free(rres);
        goto done;
    }
    fprintf(af.f, "metric,k,questions,somp,logit_lens,random_median,random_q25,random_q75\n");
    cJSON *sum = cJSON_AddArrayToObject(j, "summary");
    hp_eval_curve cv[2][2]; /* [metric][country, other] */
    double *draws = malloc(sizeof(double) * (size_t)(n_random ? n_random : 1));
    if (!draws) {
        free(rres);
        hp_atomic_abort(&af);
        hp_errf(&e, "out of memory");
        goto done;
    }
    for (int mt = 0; mt < 2; mt++)
        for (int ki = 0; ki < nk; ki++)
            for (int q = 0; q < 2; q++) {
                hp_eval_curve *cq = &cv[mt][q];
                for (int d = 0; d < n_random; d++) draws[d] = metric_of(&rres[ki * n_random + d], mt, q);
                if (hp_eval_curve_set(cq, ki, metric_of(&base, mt, q), metric_of(&res[ki][0], mt, q),
                                      metric_of(&res[ki][1], mt, q), draws, n_random, &e)) {
                    free(draws);
                    free(rres);
                    hp_atomic_abort(&af);
                    goto done;
                }
                fprintf(af.f, "%s,%d,%s", metric_name[mt], ks[ki], q ? "other" : "country");
                hp_eval_curve_csv(af.f, cq, ki);
                cJSON *r = cJSON_CreateObject();
                cJSON_AddStringToObject(r, "metric", metric_name[mt]);
                cJSON_AddNumberToObject(r, "k", ks[ki]);
                cJSON_AddStringToObject(r, "questions", q ? "other" : "country");
                hp_eval_curve_json(r, cq, ki);
                cJSON_AddItemToArray(sum, r);
            }
    free(draws);
    free(rres);
    add_answers(j, &set, base_answers);
    char *js = cJSON_Print(j);
    if (!js || hp_atomic_commit(&af, &e) || hp_write_file_atomic(json_path, js, strlen(js), &e)) {
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
                         n_random > 0, &e))
            goto done;
    }
    if (hp_eval_heatmap(heat_path, &rk, ks[nk - 1], &e)) goto done;
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
    if (rc) hp_cli_fail(&e);
    if (base_answers)
        for (int i = 0; i < set.n; i++) free(base_answers[i]);
    free(base_answers);
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
    hp_cli_close(m);
    return rc;
}
