/* ranking.h: ranking files (written by `rank` and `run`, read by `eval`, `run` and the report):
 * every head's SOMP explained variance and Logit-Lens score, and the head orders by each. */
#ifndef HP_RANKING_H
#define HP_RANKING_H

#include "pursuit.h"

struct cJSON;

/* {"token": id, "text": its piece, "word": word (when given)} */
struct cJSON *hp_token_json(const hp_model *m, int id, const char *word);

/* Scores every head of r for a word list (and a control list, or NULL): the dictionary of the
 * words' first tokens (hp_dict_concept over the full unembedding, options dopt), SOMP with so and
 * the Logit Lens per head (hp_score_heads). The words whose first token an earlier word took are
 * listed in shared_path (written atomically). Fills dict and sc [L*H] (csc [L*H] too with a
 * control) for the caller, who frees them (hp_dict_free, hp_somp_result_free). */
int hp_score_concept(const hp_model *m, const hp_reps *r, const char *words, const char *control,
                     const hp_somp_opts *so, const hp_dict_opts *dopt, const char *shared_path, int quiet,
                     hp_dict *dict, hp_head_score *sc, hp_head_score *csc, hp_err *e);

/* Where and how hp_ranking_write writes. */
typedef struct hp_ranking_out {
    const char *json, *csv, *svg; /* ranking JSON, per-head CSV, layer x head heatmap SVG */
    const char *concept_name;     /* the word list's path or a name (heatmap title: its base name) */
    int has_control;              /* csc given: the SOMP order is by EVR(concept) - EVR(control) */
    int somp_k, samples;          /* for the heatmap's subtitle */
} hp_ranking_out;

/* Orders the heads (SOMP: by evr, minus the control's evr when csc; Logit Lens: by ll; ties to
 * the lower head index) and writes JSON (meta's fields first: the run's description; then
 * somp_order_by, layers, heads_per_layer, dictionary, somp_order, ll_order, heads with their
 * first SOMP atoms), CSV and heatmap, each atomically. Takes ownership of meta. order_out
 * (optional, L*H): head indices l*H+h, best SOMP first. */
int hp_ranking_write(const hp_model *m, struct cJSON *meta, const hp_head_score *sc, const hp_head_score *csc,
                     const hp_dict *dict, const hp_ranking_out *o, int *order_out, hp_err *e);

/* A ranking file (written by `rank`): head orders by SOMP and by Logit Lens. */
typedef struct hp_ranking {
    int L, H, n;
    int (*somp)[2]; /* n (layer, head), best first */
    int (*ll)[2];
    double *somp_score, *ll_score; /* [L*H] by (layer*H + head) */
} hp_ranking;

int hp_ranking_load(const char *path, hp_ranking *r, hp_err *e);
/* Checks that a loaded ranking (from path) fits an L x H model and holds at least max_k heads. */
int hp_ranking_check(const hp_ranking *r, const char *path, int L, int H, int max_k, hp_err *e);
void hp_ranking_free(hp_ranking *r);

#endif
