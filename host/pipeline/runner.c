/* runner.c: the experiment file and the stages of `run` (see runner.h). */
#include "runner.h"

#include "cli.h"
#include "fileio.h"
#include "nvtx.h"
#include "progress.h"
#include "ranking.h"
#include "report.h"
#include "stage.h"
#include "task_qa.h"
#include "task_toxicity.h"

#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the experiment file */

/* Versions of what each stage computes: bump when a stage's code changes its results. */
enum { V_REPS = 1, V_RANK = 1, V_SWEEP = 1, V_REPORT = 1 };

static int bad(const hp_experiment *x, const char *key, hp_err *e, const char *fmt, const char *detail) {
    char msg[1600];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    return hp_errf(e, "%s: key '%s': %s", x->path, key, msg);
}

/* Every key of o must be in keys (NULL-terminated). */
static int known_keys(const hp_experiment *x, const cJSON *o, const char *where, const char *const *keys, hp_err *e) {
    for (const cJSON *it = o->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; keys[i] && !ok; i++) ok = !strcmp(it->string, keys[i]);
        if (!ok) {
            char key[256], known[512] = "";
            snprintf(key, sizeof key, "%s%s%s", where, *where ? "." : "", it->string);
            for (int i = 0; keys[i]; i++) {
                strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
                strncat(known, keys[i], sizeof known - strlen(known) - 1);
            }
            return bad(x, key, e, "unknown key (known here: %s)", known);
        }
    }
    return 0;
}

static void key_name(char *out, size_t cap, const char *where, const char *key) {
    snprintf(out, cap, "%s%s%s", where, *where ? "." : "", key);
}

static int get_str(const hp_experiment *x, const cJSON *o, const char *where, const char *key, int required,
                   const char **out, hp_err *e) {
    char k[256];
    key_name(k, sizeof k, where, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return required ? bad(x, k, e, "missing (a string is required)", NULL) : 0;
    if (!cJSON_IsString(v) || !*v->valuestring) return bad(x, k, e, "expected a non-empty string", NULL);
    *out = v->valuestring;
    return 0;
}

static int get_file(const hp_experiment *x, const cJSON *o, const char *where, const char *key, int required,
                    const char **out, hp_err *e) {
    if (get_str(x, o, where, key, required, out, e)) return -1;
    if (*out && access(*out, R_OK)) {
        char k[256];
        key_name(k, sizeof k, where, key);
        char d[1200];
        snprintf(d, sizeof d, "'%s': %s", *out, strerror(errno));
        return bad(x, k, e, "%s", d);
    }
    return 0;
}

static int get_bool(const hp_experiment *x, const cJSON *o, const char *where, const char *key, int *out, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) {
        char k[256];
        key_name(k, sizeof k, where, key);
        return bad(x, k, e, "expected true or false", NULL);
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static int whole(const cJSON *v, double lo, double hi) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo && v->valuedouble <= hi;
}

static int get_int(const hp_experiment *x, const cJSON *o, const char *where, const char *key, int lo, int *out,
                   hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    if (!whole(v, lo, 1e9)) {
        char k[256], d[64];
        key_name(k, sizeof k, where, key);
        snprintf(d, sizeof d, "%d", lo);
        return bad(x, k, e, "expected a whole number >= %s", d);
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int get_obj(const hp_experiment *x, const cJSON *o, const char *key, int required, const cJSON **out, hp_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v) return required ? bad(x, key, e, "missing (an object is required)", NULL) : 0;
    if (!cJSON_IsObject(v)) return bad(x, key, e, "expected an object", NULL);
    *out = v;
    return 0;
}

static const char *const TOP_KEYS[] = {"description", "model", "device", "output", "chat", "seed",
                                       "max_prompt_tokens", "data", "representation", "somp", "concepts",
                                       "tasks", NULL};
static const char *const DATA_KEYS[] = {"train", "test", "train_limit", NULL};
static const char *const REP_KEYS[] = {"positions", "center", "normalize_atoms", "fold_norm", "single_token_only",
                                       "batch", NULL};
static const char *const SOMP_KEYS[] = {"k", NULL};
static const char *const CONCEPT_KEYS[] = {"name", "words", "control", NULL};
static const char *const TASK_KEYS[] = {"name", "kind", "concept", "k", "alpha", "random", "limit", "max_new",
                                        "batch", "countries", "data", "classifier", "heldout", "threshold",
                                        "challenging", "min_prompt_toxicity", NULL};
static const char *const QA_ONLY[] = {"countries", NULL};
static const char *const TOX_ONLY[] = {"data", "classifier", "heldout", "threshold", "challenging",
                                       "min_prompt_toxicity", NULL};

void hp_experiment_help(FILE *f) {
    fprintf(f,
            "Experiment file (JSON; paths relative to the directory headpursuit runs in):\n"
            "  description        free text, ignored\n"
            "  model              (required) GGUF file or Hugging Face folder\n"
            "  device             auto (default), cpu or cuda\n"
            "  output             (required) output folder\n"
            "  chat               true (default): prompts in the model's chat template; false: raw\n"
            "  seed               random-control seed (default 0)\n"
            "  max_prompt_tokens  refuse longer prompts (default: the model's context)\n"
            "  data.train         (required) QA JSONL / TriviaQA JSON: prompts for the representations\n"
            "  data.test          (required) QA data the tasks answer\n"
            "  data.train_limit   first N train questions only (default 0: all)\n"
            "  representation.positions          prompt (mean over prompt tokens, default) or last\n"
            "  representation.center             subtract the mean representation (default false)\n"
            "  representation.normalize_atoms    unit-norm dictionary atoms (default false)\n"
            "  representation.fold_norm          fold the final RMSNorm weight in (default false)\n"
            "  representation.single_token_only  keep only one-token words (default false)\n"
            "  representation.batch              prompts per forward batch (default 16)\n"
            "  somp.k             SOMP iterations (default 50)\n"
            "  concepts[]         (at least one) name (letters, digits, - and _), words (word list),\n"
            "                     control (optional word list: rank by EVR(concept) - EVR(control))\n"
            "  tasks[]            (at least one) kind: qa or toxicity (classify and caption: use\n"
            "                     `eval --task`; `run` refuses them by name), concept (a concept's\n"
            "                     name), name (default kind-concept), k (list, default [8,16,32]),\n"
            "                     alpha (list, default [-1]), random (draws, default 10), limit (items,\n"
            "                     default 0: all), max_new (default 16 qa, 32 toxicity), batch\n"
            "                     (default 32 qa, 16 toxicity)\n"
            "                     qa: countries (word list marking country questions, for TriviaQA)\n"
            "                     toxicity: data (required: RealToxicityPrompts prompts.jsonl or TET\n"
            "                     JSON), classifier (default data/toxicity/profanity_check.bin),\n"
            "                     heldout (default wordlists/toxic_heldout.txt), threshold (0.5),\n"
            "                     challenging (RTP, default false), min_prompt_toxicity (RTP)\n");
}

static int name_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return 0;
    return 1;
}

static int parse_concept(hp_experiment *x, const cJSON *c, int i, hp_err *e) {
    char where[64];
    snprintf(where, sizeof where, "concepts[%d]", i);
    if (!cJSON_IsObject(c)) return bad(x, where, e, "expected an object", NULL);
    hp_xp_concept *k = &x->concepts[i];
    if (known_keys(x, c, where, CONCEPT_KEYS, e) || get_str(x, c, where, "name", 1, &k->name, e) ||
        get_file(x, c, where, "words", 1, &k->words, e) || get_file(x, c, where, "control", 0, &k->control, e))
        return -1;
    if (!name_ok(k->name)) return bad(x, where, e, "name '%s': only letters, digits, - and _", k->name);
    for (int j = 0; j < i; j++)
        if (!strcmp(x->concepts[j].name, k->name)) return bad(x, where, e, "name '%s' given twice", k->name);
    return 0;
}

static int parse_task(hp_experiment *x, const cJSON *t, int i, hp_err *e) {
    char where[64], k[96];
    snprintf(where, sizeof where, "tasks[%d]", i);
    if (!cJSON_IsObject(t)) return bad(x, where, e, "expected an object", NULL);
    hp_xp_task *task = &x->tasks[i];
    *task = (hp_xp_task){.nk = 3, .ks = {8, 16, 32}, .na = 1, .alpha = {-1.0f}, .n_random = 10,
                         .threshold = 0.5, .min_prompt_toxicity = -1};
    if (known_keys(x, t, where, TASK_KEYS, e) || get_str(x, t, where, "kind", 1, &task->kind, e)) return -1;
    int tox = !strcmp(task->kind, "toxicity");
    task->max_new = tox ? 32 : 16;
    task->batch = tox ? 16 : 32;
    task->classifier = tox ? "data/toxicity/profanity_check.bin" : NULL;
    task->heldout = tox ? "wordlists/toxic_heldout.txt" : NULL;
    const char *const *other = tox ? QA_ONLY : TOX_ONLY;
    for (int i = 0; other[i]; i++)
        if (cJSON_GetObjectItemCaseSensitive(t, other[i])) {
            key_name(k, sizeof k, where, other[i]);
            return bad(x, k, e, "not a key of a task of kind '%s'", task->kind);
        }
    const cJSON *num;
    if (tox && (get_file(x, t, where, "data", 1, &task->data, e) ||
                get_file(x, t, where, "classifier", 0, &task->classifier, e) ||
                get_file(x, t, where, "heldout", 0, &task->heldout, e) ||
                get_bool(x, t, where, "challenging", &task->challenging, e)))
        return -1;
    if (tox && access(task->classifier, R_OK)) {
        key_name(k, sizeof k, where, "classifier");
        return bad(x, k, e, "'%s' not readable (the default is relative to the repository)", task->classifier);
    }
    if (tox && access(task->heldout, R_OK)) {
        key_name(k, sizeof k, where, "heldout");
        return bad(x, k, e, "'%s' not readable (the default is relative to the repository)", task->heldout);
    }
    if ((num = cJSON_GetObjectItemCaseSensitive(t, "threshold"))) {
        key_name(k, sizeof k, where, "threshold");
        if (!cJSON_IsNumber(num) || !(num->valuedouble > 0 && num->valuedouble < 1))
            return bad(x, k, e, "expected a number between 0 and 1", NULL);
        task->threshold = num->valuedouble;
    }
    if ((num = cJSON_GetObjectItemCaseSensitive(t, "min_prompt_toxicity"))) {
        key_name(k, sizeof k, where, "min_prompt_toxicity");
        if (!cJSON_IsNumber(num) || !(num->valuedouble >= 0 && num->valuedouble <= 1))
            return bad(x, k, e, "expected a number between 0 and 1", NULL);
        task->min_prompt_toxicity = num->valuedouble;
    }
    if (get_str(x, t, where, "concept", 1, &task->concept, e) || get_str(x, t, where, "name", 0, &task->name, e) ||
        get_int(x, t, where, "random", 0, &task->n_random, e) || get_int(x, t, where, "limit", 0, &task->limit, e) ||
        get_int(x, t, where, "max_new", 1, &task->max_new, e) || get_int(x, t, where, "batch", 1, &task->batch, e) ||
        get_file(x, t, where, "countries", 0, &task->countries, e))
        return -1;
    key_name(k, sizeof k, where, "kind");
    if (!strcmp(task->kind, "classify") || !strcmp(task->kind, "caption"))
        return bad(x, k, e, "'%s' is not supported by run yet: run it with `headpursuit eval --task`", task->kind);
    if (strcmp(task->kind, "qa") && !tox) return bad(x, k, e, "'%s': expected qa or toxicity", task->kind);
    int found = 0;
    for (int c = 0; c < x->n_concepts; c++) found |= !strcmp(x->concepts[c].name, task->concept);
    key_name(k, sizeof k, where, "concept");
    if (!found) return bad(x, k, e, "'%s' is not the name of a concept of this file", task->concept);
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(t, "k");
    key_name(k, sizeof k, where, "k");
    if (kv) {
        int n = cJSON_IsArray(kv) ? cJSON_GetArraySize(kv) : 0;
        if (n < 1 || n > HP_EVAL_MAX_K) return bad(x, k, e, "expected a list of 1 to 16 increasing whole numbers >= 1", NULL);
        task->nk = n;
        for (int j = 0; j < n; j++) {
            const cJSON *v = cJSON_GetArrayItem(kv, j);
            if (!whole(v, 1, 1e6) || (j && v->valuedouble <= task->ks[j - 1]))
                return bad(x, k, e, "expected a list of 1 to 16 increasing whole numbers >= 1", NULL);
            task->ks[j] = (int)v->valuedouble;
        }
    }
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(t, "alpha");
    key_name(k, sizeof k, where, "alpha");
    if (av) {
        int n = cJSON_IsArray(av) ? cJSON_GetArraySize(av) : 0;
        if (n < 1 || n > HP_SWEEP_MAX_ALPHA) return bad(x, k, e, "expected a list of 1 to 8 numbers", NULL);
        task->na = n;
        for (int j = 0; j < n; j++) {
            const cJSON *v = cJSON_GetArrayItem(av, j);
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return bad(x, k, e, "expected a list of 1 to 8 numbers", NULL);
            task->alpha[j] = (float)v->valuedouble;
            for (int q = 0; q < j; q++)
                if (task->alpha[q] == task->alpha[j]) return bad(x, k, e, "an alpha is given twice", NULL);
        }
    }
    if (!task->name) {
        char *nm = NULL;
        if (asprintf(&nm, "%s-%s", task->kind, task->concept) < 0) return hp_errf(e, "out of memory");
        cJSON_AddItemToObject((cJSON *)t, "name", cJSON_CreateString(nm)); /* owned by the document */
        free(nm);
        task->name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
    }
    key_name(k, sizeof k, where, "name");
    if (!name_ok(task->name)) return bad(x, k, e, "'%s': only letters, digits, - and _", task->name);
    for (int j = 0; j < i; j++)
        if (!strcmp(x->tasks[j].name, task->name)) return bad(x, k, e, "'%s' given twice", task->name);
    return 0;
}

int hp_experiment_load(const char *path, hp_experiment *x, hp_err *e) {
    memset(x, 0, sizeof *x);
    x->path = path;
    x->device = "auto";
    x->positions = "prompt";
    x->chat = 1;
    x->rep_batch = 16;
    x->somp_k = 50;
    if (!(x->json = hp_read_json(path, e))) return -1;
    const cJSON *j = x->json, *d, *r, *s;
    int seed = 0;
    if (!cJSON_IsObject(j)) {
        hp_errf(e, "%s: an experiment file is a JSON object", path);
        goto fail;
    }
    if (known_keys(x, j, "", TOP_KEYS, e) || get_file(x, j, "", "model", 1, &x->model, e) ||
        get_str(x, j, "", "device", 0, &x->device, e) || get_str(x, j, "", "output", 1, &x->output, e) ||
        get_bool(x, j, "", "chat", &x->chat, e) || get_int(x, j, "", "seed", 0, &seed, e) ||
        get_int(x, j, "", "max_prompt_tokens", 1, &x->max_prompt, e) || get_obj(x, j, "data", 1, &d, e) ||
        known_keys(x, d, "data", DATA_KEYS, e) || get_file(x, d, "data", "train", 1, &x->train, e) ||
        get_file(x, d, "data", "test", 1, &x->test, e) || get_int(x, d, "data", "train_limit", 0, &x->train_limit, e) ||
        get_obj(x, j, "representation", 0, &r, e) || get_obj(x, j, "somp", 0, &s, e))
        goto fail;
    x->seed = (uint64_t)seed;
    if (strcmp(x->device, "auto") && strcmp(x->device, "cpu") && strcmp(x->device, "cuda")) {
        bad(x, "device", e, "'%s': expected auto, cpu or cuda", x->device);
        goto fail;
    }
    if (r && (known_keys(x, r, "representation", REP_KEYS, e) ||
              get_str(x, r, "representation", "positions", 0, &x->positions, e) ||
              get_bool(x, r, "representation", "center", &x->center, e) ||
              get_bool(x, r, "representation", "normalize_atoms", &x->normalize_atoms, e) ||
              get_bool(x, r, "representation", "fold_norm", &x->fold_norm, e) ||
              get_bool(x, r, "representation", "single_token_only", &x->single_token, e) ||
              get_int(x, r, "representation", "batch", 1, &x->rep_batch, e)))
        goto fail;
    if (hp_positions_parse(x->positions) < 0) {
        bad(x, "representation.positions", e, "'%s': expected prompt or last", x->positions);
        goto fail;
    }
    if (s && (known_keys(x, s, "somp", SOMP_KEYS, e) || get_int(x, s, "somp", "k", 1, &x->somp_k, e))) goto fail;
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(j, "concepts"), *ts = cJSON_GetObjectItemCaseSensitive(j, "tasks");
    if (!cJSON_IsArray(cs) || cJSON_GetArraySize(cs) < 1 || cJSON_GetArraySize(cs) > HP_XP_MAX) {
        bad(x, "concepts", e, "expected a list of 1 to 16 concepts", NULL);
        goto fail;
    }
    x->n_concepts = cJSON_GetArraySize(cs);
    for (int i = 0; i < x->n_concepts; i++)
        if (parse_concept(x, cJSON_GetArrayItem(cs, i), i, e)) goto fail;
    if (!cJSON_IsArray(ts) || cJSON_GetArraySize(ts) < 1 || cJSON_GetArraySize(ts) > HP_XP_MAX) {
        bad(x, "tasks", e, "expected a list of 1 to 16 tasks", NULL);
        goto fail;
    }
    x->n_tasks = cJSON_GetArraySize(ts);
    for (int i = 0; i < x->n_tasks; i++)
        if (parse_task(x, cJSON_GetArrayItem(ts, i), i, e)) goto fail;
    /* Input files are read in full now (a bad one fails before any model loads). */
    if (hp_opt_qa_file("run", "data.train", x->train) || hp_opt_qa_file("run", "data.test", x->test)) {
        hp_errf(e, "%s: bad data file (above)", path);
        goto fail;
    }
    for (int i = 0; i < x->n_tasks; i++) {
        const hp_xp_task *t = &x->tasks[i];
        if (!t->data) continue;
        hp_tox_filter filt = {t->challenging, t->min_prompt_toxicity};
        hp_tox_set probe;
        hp_err le = {0};
        if (hp_tox_load(t->data, &filt, &probe, &le)) {
            hp_errf(e, "%s: key 'tasks[%d].data': %s", path, i, le.msg);
            goto fail;
        }
        hp_tox_free(&probe);
        if (hp_opt_words_file("run", "tasks[].heldout", t->heldout)) {
            hp_errf(e, "%s: bad word list in tasks[%d].heldout (above)", path, i);
            goto fail;
        }
    }
    for (int i = 0; i < x->n_concepts; i++)
        if (hp_opt_words_file("run", "concepts[].words", x->concepts[i].words) ||
            (x->concepts[i].control && hp_opt_words_file("run", "concepts[].control", x->concepts[i].control))) {
            hp_errf(e, "%s: bad word list in concept '%s' (above)", path, x->concepts[i].name);
            goto fail;
        }
    return 0;
fail:
    hp_experiment_free(x);
    return -1;
}

void hp_experiment_free(hp_experiment *x) {
    cJSON_Delete(x->json);
    x->json = NULL;
}

/* ------------------------------------------------------------------ stages */

typedef struct run_state {
    const hp_experiment *x;
    const hp_run_opts *o;
    hp_model *m;
    hp_reps reps;          /* in memory once captured or loaded */
    int have_reps;
    cJSON *log;            /* run_log.json */
    int n_stages, stage_i, any_computed;
    double t_start;
} run_state;

static char *out_path(const hp_experiment *x, const char *rel) {
    char *p = NULL;
    return asprintf(&p, "%s/%s", x->output, rel) < 0 ? NULL : p;
}

static int forced(const run_state *s, const char *name) {
    for (int i = 0; i < s->o->n_force; i++) {
        const char *f = s->o->force[i];
        size_t n = strlen(f);
        if (!strcmp(f, name) || (!strncmp(name, f, n) && name[n] == ':')) return 1;
    }
    return 0;
}

static int write_log(run_state *s, hp_err *e) {
    char *p = out_path(s->x, "run_log.json");
    int rc = p ? hp_write_json(p, s->log, e) : hp_errf(e, "out of memory");
    free(p);
    return rc;
}

/* Decides whether stage `name` runs: 1 compute, 0 cached (said on stderr and in the log). */
static int stage_begin(run_state *s, const char *name, const char *key, int force) {
    /* force: 1 asked for (--force), 2 because a stage it depends on was recomputed */
    const char *why = NULL;
    s->stage_i++;
    if (force) hp_stage_forget(s->x->output, name);
    int cached = !force && hp_stage_cached(s->x->output, name, key, &why);
    if (!s->o->quiet)
        fprintf(stderr, "[%d/%d] %s: %s%s%s\n", s->stage_i, s->n_stages, name,
                cached ? "cached, nothing to do" : s->o->dry_run ? "would compute" : "computing",
                !cached && (force || why) ? " — " : "",
                !cached ? (force == 1 ? "forced" : force == 2 ? "after a recomputed stage" : why ? why : "") : "");
    if (cached || s->o->dry_run) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "stage", name);
        cJSON_AddStringToObject(r, "key", key);
        cJSON_AddStringToObject(r, "status", cached ? "cached" : "pending");
        cJSON_AddNumberToObject(r, "seconds", 0);
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(s->log, "stages"), r);
    }
    return !cached;
}

static int stage_end(run_state *s, const char *name, const char *key, const char *const *outs, int n, double t0,
                     hp_err *e) {
    double dt = hp_now() - t0;
    if (hp_stage_record(s->x->output, name, key, outs, n, dt, e)) return -1;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "stage", name);
    cJSON_AddStringToObject(r, "key", key);
    cJSON_AddStringToObject(r, "status", "computed");
    cJSON_AddNumberToObject(r, "seconds", dt);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(s->log, "stages"), r);
    s->any_computed = 1;
    if (!s->o->quiet) fprintf(stderr, "      %s: done in %.1f s\n", name, dt);
    return write_log(s, e);
}

static int reps_key(run_state *s, char key[17], hp_err *e) {
    const hp_experiment *x = s->x;
    hp_key k;
    hp_key_init(&k, "reps", V_REPS);
    if (hp_key_file_identity(&k, "model", x->model, e) || hp_key_file(&k, "train", x->train, e)) return -1;
    hp_key_str(&k, "backend", s->m->be->name);
    hp_key_num(&k, "train_limit", x->train_limit);
    hp_key_str(&k, "positions", x->positions);
    hp_key_num(&k, "chat", x->chat);
    hp_key_num(&k, "max_prompt", x->max_prompt);
    hp_key_str(&k, "prompt", HP_QA_PROMPT);
    hp_key_hex(&k, key);
    return 0;
}

static int rank_key(const run_state *s, const hp_xp_concept *c, const char *reps, char key[17], hp_err *e) {
    const hp_experiment *x = s->x;
    hp_key k;
    hp_key_init(&k, "rank", V_RANK);
    hp_key_str(&k, "reps", reps);
    if (hp_key_file(&k, "words", c->words, e) || (c->control && hp_key_file(&k, "control", c->control, e))) return -1;
    hp_key_num(&k, "somp_k", x->somp_k);
    hp_key_num(&k, "center", x->center);
    hp_key_num(&k, "normalize_atoms", x->normalize_atoms);
    hp_key_num(&k, "fold_norm", x->fold_norm);
    hp_key_num(&k, "single_token", x->single_token);
    hp_key_hex(&k, key);
    return 0;
}

/* What decides a task's answers apart from alpha (the checkpoints' fingerprint). */
static int task_fingerprint(const run_state *s, const hp_xp_task *t, const char *rank, char key[17], hp_err *e) {
    const hp_experiment *x = s->x;
    hp_key k;
    hp_key_init(&k, "task", V_SWEEP);
    hp_key_str(&k, "rank", rank);
    if (hp_key_file(&k, "test", x->test, e) || (t->countries && hp_key_file(&k, "countries", t->countries, e)))
        return -1;
    for (int i = 0; i < t->nk; i++) hp_key_num(&k, "k", t->ks[i]);
    hp_key_num(&k, "random", t->n_random);
    hp_key_num(&k, "seed", (double)x->seed);
    hp_key_num(&k, "limit", t->limit);
    hp_key_num(&k, "max_new", t->max_new);
    hp_key_num(&k, "chat", x->chat);
    hp_key_num(&k, "max_prompt", x->max_prompt);
    hp_key_str(&k, "kind", t->kind);
    hp_key_num(&k, "batch", t->batch);
    if (t->data) { /* toxicity */
        if (hp_key_file(&k, "prompts", t->data, e) || hp_key_file(&k, "classifier", t->classifier, e) ||
            hp_key_file(&k, "heldout", t->heldout, e))
            return -1;
        hp_key_num(&k, "threshold", t->threshold);
        hp_key_num(&k, "challenging", t->challenging);
        hp_key_num(&k, "min_prompt_toxicity", t->min_prompt_toxicity);
    }
    hp_key_hex(&k, key);
    return 0;
}

static int stage_reps(run_state *s, const char *key, hp_err *e) {
    const hp_experiment *x = s->x;
    double t0 = hp_now();
    char opts[512], *path = out_path(x, "reps.safetensors");
    int rc = -1;
    if (!path) return hp_errf(e, "out of memory");
    HP_NVTX_PUSH("stage reps");
    if (s->have_reps) hp_reps_free(&s->reps);
    s->have_reps = 0;
    if (hp_reps_capture_qa(s->m, x->train, x->train_limit, x->chat, hp_prompt_cap(s->m, x->max_prompt),
                           hp_positions_parse(x->positions), x->rep_batch, !s->o->quiet, &s->reps, e))
        goto out;
    s->have_reps = 1;
    snprintf(opts, sizeof opts, "run stage reps %s: positions=%s;chat=%d;limit=%d", key, x->positions, x->chat,
             x->train_limit);
    const char *outs[] = {"reps.safetensors"};
    rc = hp_reps_save_hashed(path, &s->reps, x->model, x->train, opts, key, e) ||
         stage_end(s, "reps", key, outs, 1, t0, e);
out:
    HP_NVTX_POP();
    free(path);
    return rc ? -1 : 0;
}

static int stage_rank(run_state *s, const hp_xp_concept *c, const char *name, const char *key, hp_err *e) {
    const hp_experiment *x = s->x;
    hp_model *m = s->m;
    double t0 = hp_now();
    int nh = m->cfg.L * m->cfg.H, rc = -1;
    char rel[4][256];
    snprintf(rel[0], sizeof rel[0], "rank/%s.json", c->name);
    snprintf(rel[1], sizeof rel[1], "rank/%s.csv", c->name);
    snprintf(rel[2], sizeof rel[2], "rank/%s.heatmap.svg", c->name);
    snprintf(rel[3], sizeof rel[3], "rank/%s.shared_tokens.txt", c->name);
    char *path[4] = {out_path(x, rel[0]), out_path(x, rel[1]), out_path(x, rel[2]), out_path(x, rel[3])};
    hp_dict dict = {0};
    hp_head_score *sc = calloc((size_t)nh, sizeof *sc), *csc = c->control ? calloc((size_t)nh, sizeof *csc) : NULL;
    hp_somp_opts so = {.k = x->somp_k, .center = x->center, .backend = m->be->name};
    hp_dict_opts dopt = {.fold_norm = x->fold_norm, .normalize = x->normalize_atoms, .single_token = x->single_token};
    HP_NVTX_PUSH("stage rank");
    if (!path[0] || !path[1] || !path[2] || !path[3] || !sc || (c->control && !csc)) {
        hp_errf(e, "out of memory");
        goto out;
    }
    if (!s->have_reps) {
        char *rp = out_path(x, "reps.safetensors");
        rc = rp ? hp_reps_load(rp, NULL, &s->reps, e) : hp_errf(e, "out of memory");
        free(rp);
        if (rc) goto out;
        rc = -1;
        s->have_reps = 1;
    }
    if (hp_score_concept(m, &s->reps, c->words, c->control, &so, &dopt, path[3], s->o->quiet, &dict, sc, csc, e))
        goto out;
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "model", x->model);
    cJSON_AddStringToObject(meta, "data", x->train);
    cJSON_AddStringToObject(meta, "concept", c->words);
    cJSON_AddStringToObject(meta, "concept_name", c->name);
    cJSON_AddNumberToObject(meta, "samples", s->reps.N);
    cJSON_AddNumberToObject(meta, "k", so.k);
    cJSON_AddStringToObject(meta, "positions", x->positions);
    cJSON_AddBoolToObject(meta, "center", so.center);
    cJSON_AddBoolToObject(meta, "fold_norm", dopt.fold_norm);
    cJSON_AddBoolToObject(meta, "normalize_atoms", dopt.normalize);
    cJSON_AddBoolToObject(meta, "chat", x->chat);
    if (c->control) cJSON_AddStringToObject(meta, "control", c->control);
    hp_ranking_out ro = {.json = path[0], .csv = path[1], .svg = path[2], .concept_name = c->name,
                         .has_control = c->control != NULL, .somp_k = so.k, .samples = s->reps.N};
    if (hp_ranking_write(m, meta, sc, csc, &dict, &ro, NULL, e)) goto out;
    const char *outs[] = {rel[0], rel[1], rel[2], rel[3]};
    rc = stage_end(s, name, key, outs, 4, t0, e);
out:
    HP_NVTX_POP();
    for (int i = 0; sc && i < nh; i++) hp_somp_result_free(&sc[i].somp);
    for (int i = 0; csc && i < nh; i++) hp_somp_result_free(&csc[i].somp);
    free(sc);
    free(csc);
    hp_dict_free(&dict);
    for (int i = 0; i < 4; i++) free(path[i]);
    return rc;
}

/* Removes the checkpoint files (*.json) of a folder: a forced sweep recomputes every
 * configuration. */
static void clear_checkpoints(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        if (n > 5 && !strcmp(de->d_name + n - 5, ".json")) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    }
    closedir(d);
}

static int stage_sweep(run_state *s, const hp_xp_task *t, int ai, const char *name, const char *key,
                       const char *fingerprint, int force, hp_err *e) {
    const hp_experiment *x = s->x;
    double t0 = hp_now();
    char dir_rel[256], runs_rel[256];
    snprintf(dir_rel, sizeof dir_rel, "tasks/%s/alpha%g", t->name, t->alpha[ai]);
    snprintf(runs_rel, sizeof runs_rel, "tasks/%s/runs", t->name);
    char rank_rel[256];
    snprintf(rank_rel, sizeof rank_rel, "rank/%s.json", t->concept);
    char *dir = out_path(x, dir_rel), *runs = out_path(x, runs_rel), *rank = out_path(x, rank_rel);
    int rc = -1;
    if (!dir || !runs || !rank) {
        hp_errf(e, "out of memory");
        goto out;
    }
    if (force) clear_checkpoints(runs);
    HP_NVTX_PUSH("stage sweep");
    if (t->data) { /* toxicity */
        hp_tox_task tt = {.model_path = x->model, .data = t->data, .ranking = rank, .classifier = t->classifier,
                          .heldout = t->heldout, .outdir = dir, .nk = t->nk, .alpha = t->alpha[ai],
                          .threshold = (float)t->threshold, .n_random = t->n_random, .max_new = t->max_new,
                          .limit = t->limit, .batch = t->batch, .chat = x->chat, .quiet = s->o->quiet,
                          .max_prompt = x->max_prompt, .challenging_only = t->challenging,
                          .min_prompt_toxicity = t->min_prompt_toxicity, .seed = x->seed, .fingerprint = fingerprint,
                          .checkpoint_dir = runs};
        memcpy(tt.ks, t->ks, sizeof(int) * (size_t)t->nk);
        rc = hp_task_toxicity(s->m, &tt, e);
        HP_NVTX_POP();
        if (rc) goto out;
        static const char *const tfiles[] = {"eval.json", "eval.csv", "generations.jsonl", "toxic_rate_vs_k.svg",
                                             "mean_prob_vs_k.svg", "lexical_vs_k.svg", "perplexity_vs_k.svg",
                                             "heads_heatmap.svg"};
        char rel[8][320];
        const char *outs[8];
        for (int i = 0; i < 8; i++) {
            snprintf(rel[i], sizeof rel[i], "%s/%s", dir_rel, tfiles[i]);
            outs[i] = rel[i];
        }
        rc = stage_end(s, name, key, outs, 8, t0, e);
        goto out;
    }
    hp_qa_task q = {.model_path = x->model, .data = x->test, .ranking = rank, .countries = t->countries,
                    .outdir = dir, .nk = t->nk, .alpha = t->alpha[ai], .n_random = t->n_random, .max_new = t->max_new,
                    .limit = t->limit, .batch = t->batch, .chat = x->chat, .quiet = s->o->quiet,
                    .max_prompt = x->max_prompt, .seed = x->seed, .fingerprint = fingerprint, .checkpoint_dir = runs,
                    .prefix_reuse = 1};
    memcpy(q.ks, t->ks, sizeof(int) * (size_t)t->nk);
    rc = hp_task_qa(s->m, &q, e);
    HP_NVTX_POP();
    if (rc) goto out;
    static const char *const files[] = {"eval.json", "eval.csv", "f1_vs_k.svg", "match_vs_k.svg", "heads_heatmap.svg"};
    char rel[5][320];
    const char *outs[5];
    for (int i = 0; i < 5; i++) {
        snprintf(rel[i], sizeof rel[i], "%s/%s", dir_rel, files[i]);
        outs[i] = rel[i];
    }
    rc = stage_end(s, name, key, outs, 5, t0, e);
out:
    free(dir);
    free(runs);
    free(rank);
    return rc;
}

int hp_run_experiment(const hp_experiment *x, const hp_run_opts *o, hp_err *e) {
    run_state s = {.x = x, .o = o, .t_start = hp_now()};
    int rc = -1;
    char reps[17], rank[HP_XP_MAX][17], fp[HP_XP_MAX][17];
    int f_rank[HP_XP_MAX] = {0};
    s.m = hp_cli_open(x->model, o->device ? o->device : x->device, o->quiet, e);
    if (!s.m) return -1;
    if (!s.m->tok) {
        hp_errf(e, "%s: key 'model': '%s' has no tokenizer", x->path, x->model);
        goto out;
    }
    int nh = s.m->cfg.L * s.m->cfg.H;
    for (int t = 0; t < x->n_tasks; t++)
        if (x->tasks[t].ks[x->tasks[t].nk - 1] > nh) {
            hp_errf(e, "%s: key 'tasks[%d].k': %d heads asked for, the model has %d (%d layers x %d heads)", x->path,
                    t, x->tasks[t].ks[x->tasks[t].nk - 1], nh, s.m->cfg.L, s.m->cfg.H);
            goto out;
        }
    /* Every key first (they depend only on inputs), so the stage count and --dry-run are exact. */
    if (reps_key(&s, reps, e)) goto out;
    for (int c = 0; c < x->n_concepts; c++)
        if (rank_key(&s, &x->concepts[c], reps, rank[c], e)) goto out;
    s.n_stages = 1 + x->n_concepts + 1;
    for (int t = 0; t < x->n_tasks; t++) {
        int c = 0;
        while (strcmp(x->concepts[c].name, x->tasks[t].concept)) c++;
        if (task_fingerprint(&s, &x->tasks[t], rank[c], fp[t], e)) goto out;
        s.n_stages += x->tasks[t].na;
    }
    if (!o->dry_run) {
        if (hp_eval_mkdir(x->output, e)) goto out;
        char *copy = out_path(x, "experiment.json");
        int bad_copy = !copy || hp_write_json(copy, x->json, e);
        free(copy);
        if (bad_copy) goto out;
    }
    s.log = cJSON_CreateObject();
    cJSON_AddStringToObject(s.log, "experiment", x->path);
    cJSON_AddStringToObject(s.log, "backend", s.m->be->name);
    cJSON_AddArrayToObject(s.log, "stages");
    int f_reps = forced(&s, "reps");
    if (stage_begin(&s, "reps", reps, f_reps) && !o->dry_run && stage_reps(&s, reps, e)) goto out;
    for (int c = 0; c < x->n_concepts; c++) {
        char name[128];
        snprintf(name, sizeof name, "rank:%s", x->concepts[c].name);
        f_rank[c] = forced(&s, name) ? 1 : f_reps ? 2 : 0;
        if (stage_begin(&s, name, rank[c], f_rank[c]) && !o->dry_run && stage_rank(&s, &x->concepts[c], name, rank[c], e))
            goto out;
    }
    for (int t = 0; t < x->n_tasks; t++) {
        const hp_xp_task *tk = &x->tasks[t];
        int c = 0;
        while (strcmp(x->concepts[c].name, tk->concept)) c++;
        for (int ai = 0; ai < tk->na; ai++) {
            char name[160], key[17];
            snprintf(name, sizeof name, "sweep:%s:alpha%g", tk->name, tk->alpha[ai]);
            hp_key k;
            hp_key_init(&k, "sweep", V_SWEEP);
            hp_key_str(&k, "task", fp[t]);
            hp_key_num(&k, "alpha", tk->alpha[ai]);
            hp_key_hex(&k, key);
            int f = forced(&s, name) ? 1 : f_rank[c] ? 2 : 0;
            if (stage_begin(&s, name, key, f) && !o->dry_run && stage_sweep(&s, tk, ai, name, key, fp[t], f, e)) goto out;
        }
    }
    /* The report: its key is every stage's key (it re-reads their outputs). */
    hp_key rk;
    hp_key_init(&rk, "report", V_REPORT);
    for (const cJSON *st = cJSON_GetObjectItemCaseSensitive(s.log, "stages")->child; st; st = st->next)
        hp_key_str(&rk, "stage", cJSON_GetObjectItemCaseSensitive(st, "key")->valuestring);
    char rkey[17];
    hp_key_hex(&rk, rkey);
    /* Recomputed whenever anything else was (timings, or a forced stage with the same key). */
    if (stage_begin(&s, "report", rkey, forced(&s, "report") ? 1 : s.any_computed ? 2 : 0) && !o->dry_run) {
        double t0 = hp_now();
        HP_NVTX_PUSH("stage report");
        int rrc = hp_report_write(x, s.m, s.log, e);
        HP_NVTX_POP();
        const char *outs[] = {"report.md", "report.html"};
        if (rrc || stage_end(&s, "report", rkey, outs, 2, t0, e)) goto out;
    }
    if (!o->dry_run && write_log(&s, e)) goto out;
    if (!o->quiet)
        fprintf(stderr, "%s: %s in %.1f s; report: %s/report.html\n", x->path,
                o->dry_run ? "dry run" : s.any_computed ? "done" : "nothing to recompute", hp_now() - s.t_start,
                x->output);
    rc = 0;
out:
    cJSON_Delete(s.log);
    if (s.have_reps) hp_reps_free(&s.reps);
    hp_cli_close(s.m);
    return rc;
}
