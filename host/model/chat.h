/* chat.h: chat templates (ChatML for SmolLM2-style models, Mistral-Instruct [INST], Gemma's turns) chosen from
 * the model, with an override. */
#ifndef HP_CHAT_H
#define HP_CHAT_H

#include "model.h"

/* "chatml", "mistral", "gemma", "none" -> kind; -1 if unknown. */
int hp_chat_parse(const char *name);
const char *hp_chat_name(hp_chat_kind k);
/* The default system prompt the model's own template inserts (GGUF tokenizer.chat_template),
 * or NULL. malloc'd. */
char *hp_chat_default_system(const hp_model *m);
/* Formats one user turn ready for generation; system may be NULL (then the model's default).
 * Returns malloc'd text to encode WITHOUT adding special tokens. */
char *hp_chat_format(const hp_model *m, hp_chat_kind k, const char *system, const char *user);

#endif
