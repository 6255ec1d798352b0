/* gguf.h: GGUF v2/v3 container: header, metadata key/values and the tensor directory.
 * Every offset and length is checked against the file size; strings are copied out. */
#ifndef HP_GGUF_H
#define HP_GGUF_H

#include "common.h"

typedef enum hp_gguf_type {
    HP_GGUF_U8 = 0, HP_GGUF_I8 = 1, HP_GGUF_U16 = 2, HP_GGUF_I16 = 3, HP_GGUF_U32 = 4,
    HP_GGUF_I32 = 5, HP_GGUF_F32 = 6, HP_GGUF_BOOL = 7, HP_GGUF_STRING = 8, HP_GGUF_ARRAY = 9,
    HP_GGUF_U64 = 10, HP_GGUF_I64 = 11, HP_GGUF_F64 = 12
} hp_gguf_type;

typedef struct hp_gguf_kv {
    char *key;
    hp_gguf_type type;     /* for arrays: HP_GGUF_ARRAY, element type in arr_type */
    hp_gguf_type arr_type;
    uint64_t n;            /* array length (1 for scalars) */
    int64_t i;             /* integer / bool scalars */
    double f;              /* float scalars */
    char *s;               /* string scalar */
    char **strs;           /* string arrays (n entries, NUL-terminated copies) */
    size_t *str_lens;      /* their byte lengths (strings may hold NUL bytes) */
    const void *arr;       /* numeric arrays: pointer into the mapping, n elements of arr_type */
} hp_gguf_kv;

typedef struct hp_gguf {
    char *path;
    uint32_t version;
    hp_gguf_kv *kv;
    uint64_t n_kv;
    uint32_t alignment;
} hp_gguf;

const hp_gguf_kv *hp_gguf_get(const hp_gguf *g, const char *key);
/* Typed getters: return 0 and fill *out when the key exists with a compatible type, -1 (and
 * set e, naming the file and key) otherwise. */
int hp_gguf_get_int(const hp_gguf *g, const char *key, int64_t *out, hp_err *e);
int hp_gguf_get_float(const hp_gguf *g, const char *key, double *out, hp_err *e);
const char *hp_gguf_get_str(const hp_gguf *g, const char *key); /* NULL if absent */
/* Integer array element as int64 (any integer element type); -1 on type mismatch. */
int hp_gguf_arr_int(const hp_gguf_kv *kv, uint64_t idx, int64_t *out);
double hp_gguf_arr_float(const hp_gguf_kv *kv, uint64_t idx);
/* Frees g and everything it owns (hp_store_close calls it for store->gguf). Numeric arrays point
 * into the store's mapping, so g must not outlive its store. */
void hp_gguf_free(hp_gguf *g);

#endif
