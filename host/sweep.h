/* sweep.h: the edit sweep every evaluation task shares (PAPER.md §4): the unedited model, then
 * for each alpha and each k the top-k SOMP heads, the top-k Logit-Lens heads and random controls
 * (the same number of heads in each layer as the SOMP set, none of them in it), each edited by
 * alpha; the task scores every configuration through a callback. Work is done in units (one
 * configuration on one chunk of the task's items), each kept in a checkpoint file: a re-run, or
 * the resumption of a killed run, loads finished units instead of recomputing them, and gives
 * the same numbers bit for bit. */
#ifndef HP_SWEEP_H
#define HP_SWEEP_H

#include "eval_report.h"
#include "experiment.h"

#define HP_SWEEP_MAX_ALPHA 8

enum { HP_SWEEP_UNEDITED = 0, HP_SWEEP_SOMP, HP_SWEEP_LL, HP_SWEEP_RANDOM };
/* "unedited", "somp", "logit_lens", "random" */
extern const char *const hp_sweep_method_name[4];

/* One edit under which every item is scored. */
typedef struct hp_sweep_conf {
    int method, ai, ki, draw; /* alpha index, k index, random draw (-1 unless random) */
    int k;
    float alpha;
    const hp_headset *hs;     /* NULL: unedited */
    int short_layers;         /* random: layers that had too few other heads */
    char label[64];           /* "SOMP k=8", "LL k=8", "random 3/10 k=8" (+ " a=5" with several alphas) */
} hp_sweep_conf;

typedef struct hp_sweep {
    int nk, na, n_random, per_k; /* per_k = 2 + n_random */
    int ks[HP_EVAL_MAX_K];
    float alpha[HP_SWEEP_MAX_ALPHA];
    int nconf;                   /* 1 + na * nk * per_k; conf[0] is the unedited model */
    hp_sweep_conf *conf;         /* order: unedited, then alpha, k, (SOMP, LL, draws) */
    hp_headset *heads;           /* [nk][per_k], drawn once and used at every alpha */
} hp_sweep;

/* The configurations for a ranking: random draws seeded by seed (the same seed gives the same
 * draws in every task). rk NULL: the unedited model alone. */
int hp_sweep_plan(hp_sweep *s, const hp_ranking *rk, int L, int H, const int *ks, int nk,
                  const float *alpha, int na, int n_random, uint64_t seed, hp_err *e);
void hp_sweep_free(hp_sweep *s);
/* Index of the configuration (ai, ki, x) with x 0 SOMP, 1 LL, 2 + d random draw d. */
int hp_sweep_index(const hp_sweep *s, int ai, int ki, int x);

/* What a task gives the sweep. Items are scored in chunks of `chunk` (0: all items at once);
 * chunks run in order, and within a chunk every configuration, so that `prepare` (optional:
 * work shared by all configurations, such as images through the vision tower) runs once per
 * chunk, and only when some configuration of the chunk is not in a checkpoint. */
typedef struct hp_sweep_task {
    const char *name;        /* progress label */
    int n_items, chunk, n_values;
    void *ctx;
    int (*prepare)(void *ctx, int i0, int n, hp_err *e);
    void (*release)(void *ctx, int i0, int n);
    /* Scores items [i0, i0+n) under the model's current edits: adds the raw totals into
     * values[n_values] and sets answers[0..n) (malloc'd text per item). */
    int (*score)(void *ctx, int i0, int n, double *values, char **answers, hp_err *e);
    /* Checkpoints: DIR/<label>[.i<first item>].json, valid while the key (fingerprint + the
     * edited heads with their alpha + the items) matches and its content hash checks; NULL
     * dir: none. fingerprint: every setting other than the edit that decides the result. */
    const char *checkpoint_dir, *fingerprint;
    int quiet;
} hp_sweep_task;

typedef struct hp_sweep_result {
    int nconf, n_items, n_values;
    double *values;  /* [nconf][n_values]: raw totals over all items */
    char ***answers; /* [nconf][n_items] */
    int computed, resumed; /* units computed now / loaded from checkpoints */
} hp_sweep_result;

/* Runs every configuration of s on every item of t (model edits cleared at the end). */
int hp_sweep_run(hp_model *m, const hp_sweep *s, const hp_sweep_task *t, hp_sweep_result *r, hp_err *e);
void hp_sweep_result_free(hp_sweep_result *r);

/* Curve of one score over k at alpha index ai: metric[c] is the score of configuration c,
 * normalised by metric[0] (the unedited model). */
int hp_sweep_curve(const hp_sweep *s, const double *metric, int ai, hp_eval_curve *cv, hp_err *e);

/* Fields of configuration c for a report row: alpha (when with_alpha), k, method, draw and
 * layers_short_of_heads (random), heads. */
void hp_sweep_conf_json(const hp_sweep *s, int c, struct cJSON *row, int with_alpha);

#endif
