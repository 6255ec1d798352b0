/* pursuit.h: the Head Pursuit pipeline on top of the model: per-head representations H[l,h]
 * (N×D) captured over a prompt set, dictionaries from the unembedding matrix, head scoring by
 * SOMP explained variance and by the Logit-Lens baseline, and head selections for editing. */
#ifndef HP_PURSUIT_H
#define HP_PURSUIT_H

#include "cli.h"
#include "model.h"
#include "somp.h"

#include <stdio.h>

/* Which token positions a sample's representation averages over. */
typedef enum hp_positions { HP_POS_PROMPT = 0, HP_POS_LAST } hp_positions;
int hp_positions_parse(const char *s); /* "prompt"/"mean", "last"; -1 if unknown */
const char *hp_positions_name(hp_positions p);

typedef struct hp_reps {
    int L, H, N, D;
    float *h; /* [L][H][N][D]: H[l,h] is the N×D block at ((l*H)+h)*N*D */
} hp_reps;

/* Captures H over the prompts (batches of `batch` prompts, progress bar on stderr). */
int hp_reps_capture(hp_model *m, const hp_prompts *p, hp_positions pos, int batch, int progress,
                    hp_reps *out, hp_err *e);
/* Saved as safetensors: one tensor "heads" [L, H, N, D] plus metadata (model, data, options,
 * and their hash under "hp_hash"). */
int hp_reps_save(const char *path, const hp_reps *r, const char *model, const char *data,
                 const char *options, hp_err *e);
/* Loads a saved file; when expect_hash is given and differs, fails naming both. */
int hp_reps_load(const char *path, const char *expect_hash, hp_reps *r, hp_err *e);
void hp_reps_free(hp_reps *r);
/* Hash of the model path, the data file's bytes and the options string (hex, 16 chars). */
int hp_reps_hash(const char *model, const char *data_path, const char *options, char out[17], hp_err *e);

/* A dictionary: rows of the unembedding matrix (optionally γ-folded and normalised). */
typedef struct hp_dict {
    int V, D;
    float *atoms;     /* [V, D] */
    int32_t *token;   /* [V]: the vocabulary id of each row */
    char **label;     /* [V]: the word a concept row came from (NULL for the full vocabulary) */
} hp_dict;

typedef struct hp_dict_opts {
    int fold_norm;       /* D·diag(γ) with γ the final RMSNorm weight */
    int normalize;       /* unit-norm atoms */
    int single_token;    /* concept: keep only words whose variant is a single token */
} hp_dict_opts;

/* The full unembedding (V rows). */
int hp_dict_full(const hp_model *m, const hp_dict_opts *o, hp_dict *out, hp_err *e);
/* Rows of `full` for the words of a word-list file: each word with and without a leading
 * space, first token of each variant, deduplicated. Words that map to nothing and tokens
 * shared by several words are reported on `report` (may be NULL). */
int hp_dict_concept(const hp_model *m, const hp_dict *full, const char *words_path,
                    const hp_dict_opts *o, FILE *report, hp_dict *out, hp_err *e);
void hp_dict_free(hp_dict *d);

/* One head's scores. */
typedef struct hp_head_score {
    int layer, head;
    double evr;       /* SOMP explained-variance ratio on the concept dictionary after k steps */
    double ll;        /* Logit-Lens: mean over samples and concept atoms of <atom, h_i> */
    hp_somp_result somp;
} hp_head_score;

/* Scores every head of r against dict (SOMP with o, Logit Lens). out: L*H entries. */
int hp_score_heads(const hp_reps *r, const hp_dict *dict, const hp_somp_opts *o, int progress,
                   hp_head_score *out, hp_err *e);

/* A ranking file (written by `rank`): head orders by SOMP and by Logit Lens. */
typedef struct hp_ranking {
    int L, H, n;
    int (*somp)[2]; /* n (layer, head), best first */
    int (*ll)[2];
    double *somp_score, *ll_score; /* [L*H] by (layer*H + head) */
} hp_ranking;

int hp_ranking_load(const char *path, hp_ranking *r, hp_err *e);
void hp_ranking_free(hp_ranking *r);

#endif
