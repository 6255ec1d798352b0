/* llava.h: LLaVA-NeXT (LlavaNextForConditionalGeneration): the CLIP vision tower, the projector,
 * anyres feature packing with image_newline, and the merge of image features into the language
 * model's input at the image token. The language model is an hp_model loaded from the same
 * directory with the tensor prefix "language_model.". */
#ifndef HP_LLAVA_H
#define HP_LLAVA_H

#include "config.h"
#include "model.h"

struct cJSON;

/* The decoder config of a LLaVA config.json's text_config, with transformers' defaults for the
 * keys a checkpoint leaves out. */
int hp_llava_text_config(const struct cJSON *root, const char *path, hp_config *c, hp_err *e);

#endif
