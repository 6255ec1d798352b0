/* eval_report.h: what the `eval` tasks share in their reports: the --top list, output paths, one
 * score's normalised curve over k (SOMP heads, Logit-Lens heads, random controls as median and
 * interquartile range) and its line chart, and the heatmap of the ranking with the edited heads
 * outlined. */
#ifndef HP_EVAL_REPORT_H
#define HP_EVAL_REPORT_H

#include "ranking.h"

#include <stdio.h>

struct cJSON;

#define HP_EVAL_MAX_K 16

/* The value of --task (or --task=) in a command line, "qa" when absent. */
const char *hp_eval_task(int argc, char **argv);
/* `eval --task classify|caption` (cmd_eval_vision.c); cmd_eval hands those tasks over. */
int cmd_eval_vision(int argc, char **argv);

/* "8,16,32" -> k[], *n (at most HP_EVAL_MAX_K positive values, increasing); -1 if malformed. */
int hp_eval_parse_tops(const char *s, int *k, int *n);
/* x / base, NaN when base is not positive (nothing to normalise by). */
double hp_eval_ratio(double x, double base);
/* "dir/name" (malloc'd). */
char *hp_eval_path(const char *dir, const char *name);
/* Creates dir (and missing parents). */
int hp_eval_mkdir(const char *dir, hp_err *e);

/* One score normalised to the unedited model, per k. */
typedef struct hp_eval_curve {
    double somp[HP_EVAL_MAX_K], ll[HP_EVAL_MAX_K];
    double rnd_median[HP_EVAL_MAX_K], rnd_q25[HP_EVAL_MAX_K], rnd_q75[HP_EVAL_MAX_K];
} hp_eval_curve;

/* Sets entry ki from raw scores: somp, ll and n_draws random draws, each divided by base
 * (n_draws 0: the random entries are NaN). Returns -1 when out of memory. */
int hp_eval_curve_set(hp_eval_curve *c, int ki, double base, double somp, double ll,
                      const double *draws, int n_draws, hp_err *e);

/* Entry ki of c as report fields: somp, logit_lens, random_median, random_q25, random_q75 added
 * to the JSON object r, and the same five values as ",%.4f" CSV cells ending the line on f. */
void hp_eval_curve_json(struct cJSON *r, const hp_eval_curve *c, int ki);
void hp_eval_curve_csv(FILE *f, const hp_eval_curve *c, int ki);

/* A line chart of n_groups curves (at most 2: the first drawn solid, the second dashed) against
 * k: SOMP red, Logit Lens blue, random grey with its IQR band (when with_random). The legend
 * reads "SOMP heads, <group_names[g]>", and "Logit-Lens heads, <short>", "random heads, <short>
 * (median, IQR)" with short = group_short[g] (group_short NULL: the group name). */
int hp_eval_plot(const char *path, const char *title, const char *ylabel, const int *ks, int nk,
                 const hp_eval_curve *curves, const char *const *group_names,
                 const char *const *group_short, int n_groups, int with_random, hp_err *e);

/* The ranking's SOMP scores per head with its top k_max heads outlined. */
int hp_eval_heatmap(const char *path, const hp_ranking *rk, int k_max, hp_err *e);

#endif
