/* store_internal.h: helpers shared by the checkpoint readers (safetensors.c, gguf.c) and store.c.
 * Not part of the public interface: code outside weights/ uses store.h only. */
#ifndef HP_STORE_INTERNAL_H
#define HP_STORE_INTERNAL_H

#include "store.h"

/* Maps path read-only and appends it to s->maps; returns the new map's index or -1. */
int hp_store_add_map(hp_store *s, const char *path, hp_err *e);
/* Appends a zeroed tensor slot (growing s->t; *cap is the caller's capacity counter); path
 * names the file in the out-of-memory message. */
hp_tensor *hp_store_new_tensor(hp_store *s, size_t *cap, const char *path, hp_err *e);
/* Sorts s->t by name so that hp_store_find can bisect, and rejects duplicate names. */
int hp_store_index(hp_store *s, hp_err *e);
/* Rejects overlapping byte ranges among the tensors t[first..s->n), all in the file mapped at
 * base (offsets in messages are relative to it). */
int hp_store_check_overlap(const hp_store *s, int first, const uint8_t *base, hp_err *e);

#endif
