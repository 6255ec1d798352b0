/* experiment.h: pieces the experiment commands share: QA prompts in the paper's wording (in the
 * model's chat template), head sets from a ranking, random control draws, a seeded RNG. */
#ifndef HP_EXPERIMENT_H
#define HP_EXPERIMENT_H

#include "prompts.h"
#include "dataset.h"
#include "pursuit.h"

/* PAPER.md §6, TriviaQA prompt. */
#define HP_QA_PROMPT                                                                               \
    "Answer the following question in 1-3 words only. Do not provide any additional explanation " \
    "for your answer. Question: %s Answer:"

/* One user message: in the model's chat template when chat (and the model has one), else the
 * raw text with the tokenizer's BOS. */
int hp_prompts_add_user(hp_prompts *out, const hp_model *m, const char *text, int chat, hp_err *e);

/* chat: 1 = wrap in the model's chat template, 0 = raw text (with the tokenizer's BOS). A
 * prompt longer than cap tokens (0: no cap; see hp_prompt_cap) is an error naming the data
 * file src, the record's line and id, its length and the cap. */
int hp_qa_prompts(const hp_model *m, const hp_qa_set *s, int chat, int cap, const char *src,
                  hp_prompts *out, hp_err *e);

/* Head representations over the prompts of a QA file (the first limit questions when > 0), in
 * the paper's QA prompt (hp_qa_prompts: chat template when chat, prompts over cap refused). */
int hp_reps_capture_qa(hp_model *m, const char *data, int limit, int chat, int cap, hp_positions pos, int batch,
                       int progress, hp_reps *r, hp_err *e);

/* A set of heads, as (layer, head) pairs. */
typedef struct hp_headset {
    int n;
    int (*lh)[2];
} hp_headset;

/* The first k heads of an order. */
int hp_headset_top(const int (*order)[2], int n_order, int k, hp_headset *out, hp_err *e);
/* A random control for sel: the same number of heads in each layer, none of them in sel,
 * uniformly drawn. When a layer has too few other heads, the rest come from other layers
 * (reported through *short_layers). */
int hp_headset_random(const hp_headset *sel, int L, int H, uint64_t *rng, hp_headset *out,
                      int *short_layers, hp_err *e);
void hp_headset_free(hp_headset *h);
/* Applies alpha to every head of the set (after clearing earlier edits). */
int hp_headset_apply(hp_model *m, const hp_headset *h, float alpha, hp_err *e);
/* "L.H,L.H" text (malloc'd). */
char *hp_headset_str(const hp_headset *h);

/* splitmix64 */
uint64_t hp_rng_next(uint64_t *s);

#endif
