/* tokenizer.h: BPE tokenizers as Hugging Face `tokenizers` runs them.
 *  - SentencePiece-style BPE (Mistral, Llama-2): "▁" metaspace, merges (or scores), byte_fallback
 *    to <0xNN> tokens.
 *  - GPT-2 byte-level BPE with its regex pre-split (SmolLM2 and other Llama-3-style models).
 * Loaded from tokenizer.json or from a GGUF file's tokenizer.ggml.* metadata. Added / special
 * tokens found in the text are matched before BPE (longest first), as HF does. */
#ifndef HP_TOKENIZER_H
#define HP_TOKENIZER_H

#include "common.h"

struct hp_gguf;
typedef struct hp_tokenizer hp_tokenizer;

typedef enum hp_tok_kind { HP_TOK_SPM_BPE = 0, HP_TOK_BYTELEVEL_BPE = 1 } hp_tok_kind;

hp_tokenizer *hp_tok_from_json(const char *path, hp_err *e);
hp_tokenizer *hp_tok_from_gguf(const struct hp_gguf *g, hp_err *e);
void hp_tok_free(hp_tokenizer *t);

hp_tok_kind hp_tok_kind_of(const hp_tokenizer *t);
int hp_tok_vocab_size(const hp_tokenizer *t);
int hp_tok_bos(const hp_tokenizer *t);   /* -1 if none */
int hp_tok_eos(const hp_tokenizer *t);   /* -1 if none */
/* Whether encoding with add_special adds BOS (tokenizer.json post_processor /
 * GGUF tokenizer.ggml.add_bos_token). */
int hp_tok_adds_bos(const hp_tokenizer *t);

/* Encodes UTF-8 text (len bytes). add_special: apply the post-processor (BOS for SPM models),
 * as HF's encode(text, add_special_tokens=True). Special tokens written in the text (e.g.
 * "<|im_start|>", "[INST]") become their ids. *ids is malloc'd; caller frees.
 * Invalid UTF-8 is accepted (HF takes only valid str): each maximal invalid subsequence is read
 * as U+FFFD first, as Python's bytes.decode("utf-8", "replace") does. */
int hp_tok_encode(const hp_tokenizer *t, const char *text, size_t len, int add_special,
                  int32_t **ids, int *n, hp_err *e);
/* Decodes ids to a malloc'd UTF-8 string; skip_special drops special/control tokens. Like HF
 * decode (byte-level bytes reassembled, "▁" -> " ", leading space of SPM stripped). */
char *hp_tok_decode(const hp_tokenizer *t, const int32_t *ids, int n, int skip_special);
/* The raw vocabulary string of id (as stored, e.g. "Ġhello" or "▁hello"); NULL if out of range. */
const char *hp_tok_piece(const hp_tokenizer *t, int id);
/* Id of an exact vocabulary string or special token, -1 if absent. */
int hp_tok_id(const hp_tokenizer *t, const char *piece);
/* 1 if id is a special / control token. */
int hp_tok_is_special(const hp_tokenizer *t, int id);

#endif
