/* pursuit.h: the Head Pursuit pipeline on top of the model: per-head representations H[l,h]
 * (N×D) captured over a prompt set, dictionaries from the unembedding matrix, head scoring by
 * SOMP explained variance and by the Logit-Lens baseline, and head selections for editing. */
#ifndef HP_PURSUIT_H
#define HP_PURSUIT_H

#include "prompts.h"
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
    FILE *shared;        /* concept: the words whose first token an earlier word took, one pair a
                          * line (NULL: only counted); shared_name names it in the summary line */
    const char *shared_name;
} hp_dict_opts;

/* The full unembedding (V rows). */
int hp_dict_full(const hp_model *m, const hp_dict_opts *o, hp_dict *out, hp_err *e);
/* Rows of `full` for the words of a word-list file: each word with and without a leading
 * space, first token of each variant, deduplicated. Words that map to nothing are reported on
 * `report` (may be NULL), with a summary line; tokens shared by several words are counted there
 * and listed in o->shared. */
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


/* ------------------------------------------------------------------ images (pursuit_vision.c)
 * Head representations of LLaVA-NeXT prompts with one image each: the image goes through the
 * image processor and the vision tower, its features replace the image tokens of the
 * llava-v1.6-mistral prompt, and the capture averages c[l,h] over a chosen set of positions. */
struct hp_llava;
struct hp_imageset;

/* Positions of a LLaVA prompt a sample's representation averages over: the image tokens (the
 * paper's choice), the other tokens of the prompt, the last token, or every token. */
typedef enum hp_vpos { HP_VPOS_IMAGE = 0, HP_VPOS_TEXT, HP_VPOS_LAST, HP_VPOS_ALL } hp_vpos;
int hp_vpos_parse(const char *s); /* "image", "text" (or "prompt"), "last", "all"; -1 if unknown */
const char *hp_vpos_name(hp_vpos p);

/* PAPER.md §6 prompts (the image comes first, in the model's template). */
#define HP_CLASSIFY_PROMPT                                                                         \
    "What %s is depicted in this image? Answer EXACTLY with one of the following class names "   \
    "only: %s. Answer:"
#define HP_CAPTION_PROMPT "Provide a one-sentence caption for the provided image."

/* What rank, heads and eval share for an image dataset and its prompt. */
typedef struct hp_vision_opts {
    const char *images, *labels, *captions; /* hp_imageset_open */
    const char *classes;      /* word list renaming the classes (class order), or NULL */
    const char *prompt_kind;  /* "classify" or "caption" */
    const char *object;       /* classify: what is depicted ("digit", "clothing item", ...) */
    const char *prompt;       /* user text replacing the prompt kind's, or NULL */
    int offset, limit;        /* hp_imageset_select */
} hp_vision_opts;

/* Opens, renames and subsets the dataset of o. */
int hp_vision_dataset(const hp_vision_opts *o, struct hp_imageset *s, hp_err *e);
/* The user text for the set: o->prompt, or the classification prompt with the set's class names
 * joined by ", ", or the caption prompt (malloc'd). */
char *hp_vision_user_text(const hp_vision_opts *o, const struct hp_imageset *s, hp_err *e);
/* One sample: image i through the image processor, the vision tower and hp_llava_prompt. */
int hp_llava_sample(const struct hp_llava *lv, const struct hp_imageset *s, int i, const char *user_text,
                    int32_t **ids, int *n, hp_inject *inj, hp_err *e);
/* Captures H over the images of s, each with texts[i] (batches of `batch` samples through
 * hp_forward with the image rows injected; progress bar on stderr). */
int hp_reps_capture_llava(struct hp_llava *lv, const struct hp_imageset *s, const char *const *texts,
                          hp_vpos pos, int batch, int progress, hp_reps *out, hp_err *e);
/* hp_reps_save with a hash computed by the caller (image sets are folders, not one file). */
int hp_reps_save_hashed(const char *path, const hp_reps *r, const char *model, const char *data,
                        const char *options, const char *hash, hp_err *e);
/* Backend + hp_llava_load, one log line unless quiet; hp_vision_close frees both. */
struct hp_llava *hp_vision_open(const char *path, const char *device, int quiet, hp_err *e);
void hp_vision_close(struct hp_llava *lv);
/* A word list file (mkstemp under $TMPDIR or /tmp) holding the set's class names, for
 * hp_dict_concept; *path malloc'd, the caller unlinks it. */
int hp_vision_classes_file(const struct hp_imageset *s, char **path, hp_err *e);

#endif
