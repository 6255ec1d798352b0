/* runner.h: `headpursuit run EXPERIMENT.json`: the paper's whole pipeline as cached, resumable
 * stages: head representations over the train split (one capture shared by every concept), a
 * SOMP + Logit-Lens ranking per concept, an edit sweep per task and alpha, and one report. */
#ifndef HP_RUNNER_H
#define HP_RUNNER_H

#include "eval_report.h"
#include "sweep.h"

#include <stdint.h>

#define HP_XP_MAX 16 /* concepts, tasks */

typedef struct hp_xp_concept {
    const char *name, *words, *control; /* control: NULL unless given */
} hp_xp_concept;

typedef struct hp_xp_task {
    const char *name, *kind, *concept, *countries; /* kind: "qa" or "toxicity" */
    int ks[HP_EVAL_MAX_K], nk;
    float alpha[HP_SWEEP_MAX_ALPHA];
    int na, n_random, limit, max_new, batch;
    /* toxicity: the prompts (RTP JSONL or TET JSON), the classifier, the held-out words */
    const char *data, *classifier, *heldout;
    double threshold, min_prompt_toxicity; /* min_prompt_toxicity < 0: no filter */
    int challenging;
} hp_xp_task;

typedef struct hp_experiment {
    const char *path;                 /* the experiment file */
    struct cJSON *json;               /* owns every string below */
    const char *model, *device, *output, *train, *test, *positions;
    int chat, train_limit, rep_batch, max_prompt, center, normalize_atoms, fold_norm, single_token, somp_k;
    uint64_t seed;
    int n_concepts, n_tasks;
    hp_xp_concept concepts[HP_XP_MAX];
    hp_xp_task tasks[HP_XP_MAX];
} hp_experiment;

/* Reads and checks an experiment file: every key known, every value of its type and range,
 * every input file readable; errors name the file and the key. Nothing is written. */
int hp_experiment_load(const char *path, hp_experiment *x, hp_err *e);
void hp_experiment_free(hp_experiment *x);
/* The keys and their meaning, for --help. */
void hp_experiment_help(FILE *f);

typedef struct hp_run_opts {
    const char *device;        /* overrides the file's device, or NULL */
    const char *force[8];      /* stage names or kinds (reps, rank, sweep, report) to recompute */
    int n_force, quiet, dry_run;
} hp_run_opts;

/* Runs every stage not already done; writes OUT/run_log.json (one entry per stage: name, key,
 * computed or cached, seconds), OUT/report.md and OUT/report.html. */
int hp_run_experiment(const hp_experiment *x, const hp_run_opts *o, hp_err *e);

#endif
