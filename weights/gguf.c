/* gguf.c: GGUF v2/v3 reader. Layout (little-endian): "GGUF", u32 version, u64 tensor count,
 * u64 key/value count; key/values (string key, u32 type, value; strings are u64 length + bytes;
 * arrays are u32 element type + u64 count + elements); tensor infos (name, u32 n_dims,
 * u64 ne[n_dims] innermost first, u32 GGML type, u64 offset); padding to general.alignment
 * (default 32); tensor data, each offset relative to the data section and aligned. Every read is
 * bounds-checked against the mapping; metadata strings are copied out, numeric arrays are not. */
#include "gguf.h"

#include <math.h>
#include <stdlib.h>

#include "store_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF and safetensors readers assume a little-endian host"
#endif

#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct rd {
    const uint8_t *p;
    size_t size, pos;
    const char *path;
    hp_err *e;
} rd;

static const char *const type_names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                         "bool", "string", "array", "u64", "i64", "f64"};
static const char *type_name(uint32_t t) { return t <= HP_GGUF_F64 ? type_names[t] : "unknown"; }

/* Bytes of a fixed-size value type; 0 for strings, arrays and unknown types. */
static size_t type_size(uint32_t t) {
    switch (t) {
    case HP_GGUF_U8:
    case HP_GGUF_I8:
    case HP_GGUF_BOOL: return 1;
    case HP_GGUF_U16:
    case HP_GGUF_I16: return 2;
    case HP_GGUF_U32:
    case HP_GGUF_I32:
    case HP_GGUF_F32: return 4;
    case HP_GGUF_U64:
    case HP_GGUF_I64:
    case HP_GGUF_F64: return 8;
    default: return 0;
    }
}

static int is_int_type(uint32_t t) { return type_size(t) && t != HP_GGUF_F32 && t != HP_GGUF_F64; }

/* Decodes one fixed-size value; integers (and bools) go to *i, floats to *f. U64 values above
 * INT64_MAX come out negative: callers that care check the type. */
static void decode(uint32_t t, const uint8_t *b, int64_t *i, double *f) {
    uint64_t u = 0;
    size_t n = type_size(t);
    for (size_t k = n; k-- > 0;) u = u << 8 | b[k];
    *i = 0;
    *f = 0;
    switch (t) {
    case HP_GGUF_I8: *i = (int8_t)(uint8_t)u; break;
    case HP_GGUF_I16: *i = (int16_t)(uint16_t)u; break;
    case HP_GGUF_I32: *i = (int32_t)(uint32_t)u; break;
    case HP_GGUF_BOOL: *i = u != 0; break;
    case HP_GGUF_F32: {
        uint32_t w = (uint32_t)u;
        float x;
        memcpy(&x, &w, 4);
        *f = x;
        break;
    }
    case HP_GGUF_F64: memcpy(f, &u, 8); break;
    default: memcpy(i, &u, 8); break; /* unsigned, and I64 (two's complement) */
    }
}

static int need(rd *r, size_t n, const char *what) {
    if (n > r->size - r->pos)
        return hp_errf(r->e, "%s: byte %zu: truncated file reading %s (%zu bytes needed, %zu left)",
                       r->path, r->pos, what, n, r->size - r->pos);
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    if (need(r, 4, what)) return -1;
    const uint8_t *b = r->p + r->pos;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    r->pos += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
    if (need(r, 8, what)) return -1;
    uint64_t u = 0;
    for (int k = 7; k >= 0; k--) u = u << 8 | r->p[r->pos + k];
    *v = u;
    r->pos += 8;
    return 0;
}

/* Reads a string and returns a NUL-terminated copy (the bytes may hold NULs: *len has the size). */
static char *rd_str(rd *r, size_t *len, const char *what) {
    uint64_t n;
    if (rd_u64(r, &n, what)) return NULL;
    if (n > r->size - r->pos) {
        hp_errf(r->e, "%s: byte %zu: %s of %llu bytes runs past the end of the file (%zu bytes)",
                r->path, r->pos - 8, what, (unsigned long long)n, r->size);
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        hp_errf(r->e, "%s: byte %zu: out of memory for %s", r->path, r->pos, what);
        return NULL;
    }
    memcpy(s, r->p + r->pos, (size_t)n);
    s[n] = 0;
    r->pos += (size_t)n;
    if (len) *len = (size_t)n;
    return s;
}

static int read_kv(rd *r, hp_gguf_kv *kv) {
    size_t at = r->pos;
    if (!(kv->key = rd_str(r, NULL, "metadata key"))) return -1;
    uint32_t t;
    if (rd_u32(r, &t, "metadata value type")) return -1;
    if (t > HP_GGUF_F64)
        return hp_errf(r->e, "%s: byte %zu: key '%s' has unknown value type %u", r->path, at,
                       kv->key, t);
    kv->type = (hp_gguf_type)t;
    kv->n = 1;
    if (t == HP_GGUF_STRING) return (kv->s = rd_str(r, NULL, "string value")) ? 0 : -1;
    if (t != HP_GGUF_ARRAY) {
        if (need(r, type_size(t), "metadata value")) return -1;
        decode(t, r->p + r->pos, &kv->i, &kv->f);
        r->pos += type_size(t);
        return 0;
    }
    uint32_t at2;
    uint64_t n;
    if (rd_u32(r, &at2, "array element type") || rd_u64(r, &n, "array length")) return -1;
    if (at2 > HP_GGUF_F64 || at2 == HP_GGUF_ARRAY)
        return hp_errf(r->e, "%s: byte %zu: key '%s': unsupported array element type %u (%s)",
                       r->path, at, kv->key, at2, type_name(at2));
    kv->arr_type = (hp_gguf_type)at2;
    size_t left = r->size - r->pos;
    if (at2 == HP_GGUF_STRING) {
        if (n > left / 8) /* every string needs at least its 8-byte length */
            return hp_errf(r->e,
                           "%s: byte %zu: key '%s': %llu strings cannot fit in the %zu bytes left",
                           r->path, r->pos, kv->key, (unsigned long long)n, left);
        kv->strs = calloc(n ? (size_t)n : 1, sizeof *kv->strs);
        kv->str_lens = calloc(n ? (size_t)n : 1, sizeof *kv->str_lens);
        if (!kv->strs || !kv->str_lens)
            return hp_errf(r->e, "%s: key '%s': out of memory for %llu strings", r->path, kv->key,
                           (unsigned long long)n);
        kv->n = n; /* set first so hp_gguf_free releases a partly read array */
        for (uint64_t k = 0; k < n; k++)
            if (!(kv->strs[k] = rd_str(r, &kv->str_lens[k], "array string"))) return -1;
        return 0;
    }
    size_t es = type_size(at2);
    if (n > left / es)
        return hp_errf(r->e,
                       "%s: byte %zu: key '%s': array of %llu x %s runs past the end of the file",
                       r->path, r->pos, kv->key, (unsigned long long)n, type_name(at2));
    kv->n = n;
    kv->arr = r->p + r->pos;
    r->pos += (size_t)n * es;
    return 0;
}

static int cmp_kv_key(const void *a, const void *b) {
    return strcmp((*(const hp_gguf_kv *const *)a)->key, (*(const hp_gguf_kv *const *)b)->key);
}

static int check_unique_keys(const hp_gguf *g, hp_err *e) {
    if (g->n_kv < 2) return 0;
    const hp_gguf_kv **v = malloc((size_t)g->n_kv * sizeof *v);
    if (!v) return hp_errf(e, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_kv; i++) v[i] = &g->kv[i];
    qsort(v, (size_t)g->n_kv, sizeof *v, cmp_kv_key);
    int rc = 0;
    for (uint64_t i = 1; i < g->n_kv && !rc; i++)
        if (!strcmp(v[i - 1]->key, v[i]->key))
            rc = hp_errf(e, "%s: duplicate metadata key '%s'", g->path, v[i]->key);
    free(v);
    return rc;
}

/* GGML type ids (ggml.h enum ggml_type, checked against the gguf Python package) -> hp_dtype. */
static int ggml_to_dtype(uint32_t id, hp_dtype *dt) {
    static const struct {
        uint32_t id;
        hp_dtype dt;
    } tab[] = {{0, HP_F32},   {1, HP_F16},   {2, HP_Q4_0},  {3, HP_Q4_1},
               {6, HP_Q5_0},  {7, HP_Q5_1},  {8, HP_Q8_0},  {10, HP_Q2_K},
               {11, HP_Q3_K}, {12, HP_Q4_K}, {13, HP_Q5_K}, {14, HP_Q6_K},
               {15, HP_Q8_K}, {26, HP_I32},  {27, HP_I64},  {30, HP_BF16}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].id == id) {
            *dt = tab[i].dt;
            return 0;
        }
    return -1;
}

/* Names of the GGML types we know but do not read, for a useful message. */
static const char *ggml_other_name(uint32_t id) {
    static const char *const names[] = {
        [4] = "Q4_2 (removed)", [5] = "Q4_3 (removed)", [9] = "Q8_1",    [16] = "IQ2_XXS",
        [17] = "IQ2_XS",        [18] = "IQ3_XXS",       [19] = "IQ1_S",  [20] = "IQ4_NL",
        [21] = "IQ3_S",         [22] = "IQ2_S",         [23] = "IQ4_XS", [24] = "I8",
        [25] = "I16",           [28] = "F64",           [29] = "IQ1_M",  [34] = "TQ1_0",
        [35] = "TQ2_0",         [39] = "MXFP4",         [40] = "NVFP4",  [41] = "Q1_0"};
    return id < sizeof names / sizeof names[0] && names[id] ? names[id] : "unknown";
}

static int parse(hp_store *s, size_t *cap, const hp_mapping *m, hp_gguf *g, hp_err *e) {
    rd r = {.p = m->base, .size = m->size, .pos = 0, .path = m->path, .e = e};
    uint32_t magic, version;
    uint64_t n_t, n_kv;
    if (rd_u32(&r, &magic, "magic")) return -1;
    if (memcmp(r.p, "GGUF", 4))
        return hp_errf(e, "%s: byte 0: not a GGUF file (bad magic)", r.path);
    if (rd_u32(&r, &version, "version")) return -1;
    if (version != 2 && version != 3)
        return hp_errf(e, "%s: byte 4: unsupported GGUF version %u (2 and 3 are read%s)", r.path,
                       version, version > 0xffff ? "; big-endian file?" : "");
    g->version = version;
    if (rd_u64(&r, &n_t, "tensor count") || rd_u64(&r, &n_kv, "metadata count")) return -1;
    /* Bound the counts by the bytes left before allocating: a key/value needs at least 13 bytes
     * (key length, type, one byte of value), a tensor info at least 32. */
    if (n_kv > (r.size - r.pos) / 13)
        return hp_errf(e, "%s: byte 16: metadata count %llu cannot fit in a %zu-byte file", r.path,
                       (unsigned long long)n_kv, r.size);
    if (n_t > (r.size - r.pos) / 32)
        return hp_errf(e, "%s: byte 8: tensor count %llu cannot fit in a %zu-byte file", r.path,
                       (unsigned long long)n_t, r.size);
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    if (!g->kv) return hp_errf(e, "%s: out of memory", r.path);
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1; /* counts the entry being read, so that a failure frees it */
        if (read_kv(&r, &g->kv[i])) return -1;
    }
    if (check_unique_keys(g, e)) return -1;

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const hp_gguf_kv *al = hp_gguf_get(g, "general.alignment");
    if (al) {
        if (al->type != HP_GGUF_U32 || al->i == 0 || (al->i & (al->i - 1)))
            return hp_errf(e, "%s: general.alignment must be a u32 power of two", r.path);
        g->alignment = (uint32_t)al->i;
    }

    uint64_t *offs = malloc((n_t ? (size_t)n_t : 1) * sizeof *offs);
    if (!offs) return hp_errf(e, "%s: out of memory", r.path);
    int first = s->n, rc = 0;
    for (uint64_t i = 0; i < n_t && !rc; i++) {
        size_t at = r.pos;
        hp_tensor *t = hp_store_new_tensor(s, cap, r.path, e);
        if (!t) {
            rc = -1;
            break;
        }
        t->file = m->path;
        uint32_t nd, ty;
        if (!(t->name = rd_str(&r, NULL, "tensor name")) || rd_u32(&r, &nd, "tensor n_dims")) {
            rc = -1;
            break;
        }
        if (nd < 1 || nd > 4) {
            rc = hp_errf(e, "%s: byte %zu: tensor '%s' has %u dimensions (1..4 supported)", r.path,
                         at, t->name, nd);
            break;
        }
        uint64_t ne[4], nelem = 1;
        for (uint32_t k = 0; k < nd && !rc; k++) {
            if (rd_u64(&r, &ne[k], "tensor shape")) {
                rc = -1;
            } else if (ne[k] > (uint64_t)INT64_MAX ||
                       (ne[k] && nelem > (uint64_t)INT64_MAX / ne[k])) {
                rc = hp_errf(e, "%s: byte %zu: tensor '%s': element count overflows", r.path, at,
                             t->name);
            } else {
                nelem *= ne[k];
            }
        }
        if (rc || rd_u32(&r, &ty, "tensor type") || rd_u64(&r, &offs[i], "tensor offset")) {
            rc = -1;
            break;
        }
        if (ggml_to_dtype(ty, &t->dt)) {
            rc = hp_errf(e, "%s: byte %zu: tensor '%s' has unsupported GGML type id %u (%s)",
                         r.path, at, t->name, ty, ggml_other_name(ty));
            break;
        }
        /* Blocks run along the innermost dimension, so every row must hold whole blocks. */
        if (ne[0] % (uint64_t)hp_dtype_block(t->dt)) {
            rc = hp_errf(e,
                         "%s: byte %zu: tensor '%s': row length %llu is not a multiple of the %s "
                         "block size %d",
                         r.path, at, t->name, (unsigned long long)ne[0], hp_dtype_name(t->dt),
                         hp_dtype_block(t->dt));
            break;
        }
        int ok;
        t->nbytes = hp_dtype_nbytes(t->dt, nelem, &ok);
        if (!ok) {
            rc = hp_errf(e, "%s: byte %zu: tensor '%s': byte size overflows", r.path, at, t->name);
            break;
        }
        t->ndim = (int)nd;
        for (uint32_t k = 0; k < nd; k++) t->shape[k] = (int64_t)ne[nd - 1 - k]; /* HF order */
        t->nelem = nelem;
    }
    if (!rc) {
        /* The data section starts at the next multiple of the alignment. */
        size_t a = g->alignment, data0 = r.pos, pad = (a - r.pos % a) % a;
        if (!hp_add_ok(r.pos, pad, &data0) || (n_t && data0 > r.size))
            rc = hp_errf(e,
                         "%s: byte %zu: data section (aligned to %zu) starts past the end of the "
                         "file (%zu bytes)",
                         r.path, r.pos, a, r.size);
        for (int i = first; i < s->n && !rc; i++) {
            hp_tensor *t = &s->t[i];
            uint64_t o = offs[i - first];
            if (o % a)
                rc = hp_errf(e,
                             "%s: tensor '%s': offset %llu is not a multiple of the alignment %zu",
                             r.path, t->name, (unsigned long long)o, a);
            else if (o > r.size - data0 || t->nbytes > r.size - data0 - o)
                rc =
                    hp_errf(e,
                            "%s: tensor '%s': data at file offset %zu + %llu, %zu bytes, runs past "
                            "the end of the file (%zu bytes)",
                            r.path, t->name, data0, (unsigned long long)o, t->nbytes, r.size);
            else
                t->data = r.p + data0 + o;
        }
    }
    free(offs);
    if (!rc) rc = hp_store_check_overlap(s, first, r.p, e);
    return rc;
}

int hp_store_open_gguf(hp_store *s, const char *path, hp_err *e) {
    memset(s, 0, sizeof *s);
    size_t cap = 0;
    hp_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return hp_errf(e, "%s: out of memory", path);
    }
    s->gguf = g;
    int mi = hp_store_add_map(s, path, e);
    int rc = mi < 0 ? -1 : parse(s, &cap, &s->maps[mi], g, e);
    if (!rc) rc = hp_store_index(s, e);
    if (rc) hp_store_close(s);
    return rc;
}

void hp_gguf_free(hp_gguf *g) {
    if (!g) return;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        hp_gguf_kv *kv = &g->kv[i];
        free(kv->key);
        free(kv->s);
        if (kv->strs)
            for (uint64_t k = 0; k < kv->n; k++) free(kv->strs[k]);
        free(kv->strs);
        free(kv->str_lens);
    }
    free(g->kv);
    free(g->path);
    free(g);
}

const hp_gguf_kv *hp_gguf_get(const hp_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

int hp_gguf_get_int(const hp_gguf *g, const char *key, int64_t *out, hp_err *e) {
    const hp_gguf_kv *kv = hp_gguf_get(g, key);
    const char *path = g ? g->path : "(no gguf)";
    if (!kv) return hp_errf(e, "%s: missing metadata key %s", path, key);
    if (!is_int_type(kv->type))
        return hp_errf(e, "%s: metadata key %s has type %s, expected an integer", path, key,
                       type_name(kv->type));
    if (kv->type == HP_GGUF_U64 && kv->i < 0)
        return hp_errf(e, "%s: metadata key %s: value does not fit in int64", path, key);
    *out = kv->i;
    return 0;
}

int hp_gguf_get_float(const hp_gguf *g, const char *key, double *out, hp_err *e) {
    const hp_gguf_kv *kv = hp_gguf_get(g, key);
    const char *path = g ? g->path : "(no gguf)";
    if (!kv) return hp_errf(e, "%s: missing metadata key %s", path, key);
    if (kv->type == HP_GGUF_F32 || kv->type == HP_GGUF_F64)
        *out = kv->f;
    else if (is_int_type(kv->type) && kv->type != HP_GGUF_BOOL)
        *out = kv->type == HP_GGUF_U64 ? (double)(uint64_t)kv->i : (double)kv->i;
    else
        return hp_errf(e, "%s: metadata key %s has type %s, expected a number", path, key,
                       type_name(kv->type));
    return 0;
}

const char *hp_gguf_get_str(const hp_gguf *g, const char *key) {
    const hp_gguf_kv *kv = hp_gguf_get(g, key);
    return kv && kv->type == HP_GGUF_STRING ? kv->s : NULL;
}

int hp_gguf_arr_int(const hp_gguf_kv *kv, uint64_t idx, int64_t *out) {
    if (!kv || kv->type != HP_GGUF_ARRAY || !is_int_type(kv->arr_type) || idx >= kv->n) return -1;
    size_t es = type_size(kv->arr_type);
    double f;
    decode(kv->arr_type, (const uint8_t *)kv->arr + idx * es, out, &f);
    if (kv->arr_type == HP_GGUF_U64 && *out < 0) return -1;
    return 0;
}

/* NAN on a type mismatch or an index out of range. */
double hp_gguf_arr_float(const hp_gguf_kv *kv, uint64_t idx) {
    if (!kv || kv->type != HP_GGUF_ARRAY || !type_size(kv->arr_type) || idx >= kv->n) return NAN;
    size_t es = type_size(kv->arr_type);
    int64_t i;
    double f;
    decode(kv->arr_type, (const uint8_t *)kv->arr + idx * es, &i, &f);
    if (kv->arr_type == HP_GGUF_F32 || kv->arr_type == HP_GGUF_F64) return f;
    return kv->arr_type == HP_GGUF_U64 ? (double)(uint64_t)i : (double)i;
}
