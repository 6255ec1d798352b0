/* prompts.h: a batch of token-id prompts (what capture, generation and the tasks work on), and
 * the longest prompt a command accepts. */
#ifndef HP_PROMPTS_H
#define HP_PROMPTS_H

#include "model.h"

/* A batch of token-id prompts. */
typedef struct hp_prompts {
    int B;
    int32_t **ids;
    int *len;
} hp_prompts;

void hp_prompts_free(hp_prompts *p);
/* "1,2,3" -> one prompt appended. */
int hp_prompts_add_csv(hp_prompts *p, const char *csv, hp_err *e);
int hp_prompts_add(hp_prompts *p, const int32_t *ids, int n, hp_err *e);
/* A JSON file holding a list of lists of token ids. */
int hp_prompts_from_json(hp_prompts *p, const char *path, hp_err *e);
/* The longest prompt, in tokens, a command accepts: max_prompt_tokens when > 0 (the
 * --max-prompt-tokens option), else the model's context (max_position_embeddings, GGUF
 * context_length); 0 when neither is known: no cap. */
int hp_prompt_cap(const hp_model *m, int max_prompt_tokens);
/* An error naming the prompt (where: the file and its record, or the option) unless its n
 * tokens fit the cap (0: no cap). Commands check every prompt before any forward pass. */
int hp_prompt_fits(int n, int cap, const char *where, hp_err *e);
/* The same check over every prompt of p: where is their source; with several prompts the
 * message names the entry (0-based). */
int hp_prompts_fit(const hp_prompts *p, int cap, const char *where, hp_err *e);
/* Tokenizes text (add_special as HF's add_special_tokens) and appends it. */
int hp_prompts_add_text(hp_prompts *p, const hp_model *m, const char *text, int add_special, hp_err *e);

#endif
