/* safetensors_write.h: writing float32 tensors as a safetensors file (atomically) with string
 * metadata, and reading a file's __metadata__ back (for cache checks). */
#ifndef HP_SAFETENSORS_WRITE_H
#define HP_SAFETENSORS_WRITE_H

#include "common.h"

typedef struct hp_st_out {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;
} hp_st_out;

/* meta_kv: n_meta pairs key, value (strings). */
int hp_safetensors_write(const char *path, const hp_st_out *t, int n, const char *const *meta_kv,
                         int n_meta, hp_err *e);
/* Returns a malloc'd copy of __metadata__[key], or NULL (e set) if absent or unreadable. */
char *hp_safetensors_metadata(const char *path, const char *key, hp_err *e);

#endif
