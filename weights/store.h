/* store.h: a read-only set of named tensors memory-mapped from safetensors files (single or
 * sharded through model.safetensors.index.json) or from one GGUF file. Knows nothing of models
 * or devices: the model table in host/model/model.c maps logical tensors onto these names. */
#ifndef HP_STORE_H
#define HP_STORE_H

#include "common.h"

struct hp_gguf;

typedef struct hp_tensor {
    char *name;          /* as stored in the file */
    hp_dtype dt;
    int ndim;            /* 0..4 (0: a safetensors scalar, nelem 1) */
    int64_t shape[4];    /* row-major, outermost first (HF order; GGUF's ne[] is reversed) */
    uint64_t nelem;
    const uint8_t *data; /* points into the mapping, nbytes long, bounds-checked at open; may be
                          * unaligned (safetensors does not align): read with memcpy */
    size_t nbytes;
    const char *file;    /* path of the file that holds it (owned by the store) */
} hp_tensor;

typedef struct hp_mapping {
    char *path;
    void *base;
    size_t size;
} hp_mapping;

typedef struct hp_store {
    hp_tensor *t;        /* n entries, sorted by name (hp_store_find bisects; names unique) */
    int n;
    hp_mapping *maps;
    int nmaps;
    struct hp_gguf *gguf; /* non-NULL when opened from a GGUF file: its metadata */
} hp_store;

/* A directory holding model.safetensors or model.safetensors.index.json (+ shards), or a
 * path to one .safetensors file. */
int hp_store_open_safetensors(hp_store *s, const char *path, hp_err *e);
int hp_store_open_gguf(hp_store *s, const char *path, hp_err *e);
void hp_store_close(hp_store *s);
/* Drops the mapped pages from memory (the file stays mapped; pages are read again if touched):
 * after the weights have been copied out, so that they are not held twice. */
void hp_store_release(hp_store *s);
/* The same for the whole pages inside one tensor's bytes (as soon as it has been copied, so that
 * a load never holds the file and the copy at once). */
void hp_store_release_tensor(const hp_tensor *t);
const hp_tensor *hp_store_find(const hp_store *s, const char *name);

/* Converts / dequantises all elements of t to float32 (dst holds t->nelem floats). */
int hp_tensor_to_f32(const hp_tensor *t, float *dst, hp_err *e);
/* Dequantises n elements (a multiple of the block size) of type dt from src. */
void hp_dequant_f32(hp_dtype dt, const void *src, float *dst, uint64_t n);

#endif
