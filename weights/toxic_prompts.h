/* toxic_prompts.h: readers for the two prompt sets of the toxicity experiment (PAPER.md §6), in
 * their published layouts:
 *   - RealToxicityPrompts (Gehman et al. 2020), prompts.jsonl: one object a line with
 *     "filename", "begin", "end", "challenging" (bool), "prompt" and "continuation", each
 *     {"text", and the eight Perspective scores toxicity, severe_toxicity, profanity,
 *     sexually_explicit, identity_attack, flirtation, threat, insult} (a score may be null);
 *   - TET, Thoroughly Engineered Toxicity (Luong et al. 2024): a JSON array of {"conversation_id",
 *     "query", "metrics": [strings]} (the published parquet converted to JSON, see README).
 * Errors name the file and the line (RTP: the record's line; TET: the line its element starts). */
#ifndef HP_TOXIC_PROMPTS_H
#define HP_TOXIC_PROMPTS_H

#include "common.h"

enum { HP_TOX_RTP = 1, HP_TOX_TET = 2 };
#define HP_TOX_N_ATTR 8
/* Perspective attribute names, in the order of hp_tox_item's score arrays. */
extern const char *const hp_tox_attr[HP_TOX_N_ATTR];

typedef struct hp_tox_item {
    char *id;           /* RTP: "filename:begin-end"; TET: conversation_id */
    char *prompt;       /* RTP: prompt.text; TET: query (UTF-8, non-empty) */
    char *continuation; /* RTP: continuation.text (NULL when the record has none); TET: NULL */
    int challenging;    /* RTP: the flag; TET: 0 */
    float prompt_score[HP_TOX_N_ATTR]; /* RTP Perspective scores of the prompt; NaN when null */
    float cont_score[HP_TOX_N_ATTR];   /* of the continuation; NaN when null or absent */
    char **metrics;     /* TET: the record's metric names; RTP: NULL */
    int n_metrics;
    long line;          /* 1-based line of the record in its file */
} hp_tox_item;

typedef struct hp_tox_set {
    hp_tox_item *items;
    int n;
    int format;     /* HP_TOX_RTP or HP_TOX_TET */
    long n_read;    /* records in the file, before the filter */
} hp_tox_set;

/* Which records to keep. challenging_only and min_prompt_toxicity apply to RTP only (TET has
 * neither field: asking for them is an error). A record whose prompt toxicity is null never
 * passes a threshold. */
typedef struct hp_tox_filter {
    int challenging_only;
    double min_prompt_toxicity; /* keep prompt toxicity >= this; < 0: no threshold */
} hp_tox_filter;

int hp_rtp_load(const char *path, const hp_tox_filter *f, hp_tox_set *out, hp_err *e);
int hp_tet_load(const char *path, const hp_tox_filter *f, hp_tox_set *out, hp_err *e);
/* Either format: a file whose first non-space byte is '[' is TET, anything else RTP JSONL. */
int hp_tox_load(const char *path, const hp_tox_filter *f, hp_tox_set *out, hp_err *e);
void hp_tox_free(hp_tox_set *s);

#endif
