/* safetensors.c: reads safetensors checkpoints (one file, or shards listed by
 * model.safetensors.index.json) into an hp_store, memory-mapped. Layout: an 8-byte little-endian
 * header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
 * "__metadata__": {...}}, then the byte buffer that the offsets index. Every offset pair is
 * checked against the buffer size and against dtype x shape before any pointer is formed, and
 * the tensors must tile the buffer exactly as the safetensors library demands: sorted by begin,
 * the first at 0, each beginning where the previous ended, the last ending at end of file; the
 * header is UTF-8 JSON starting with '{', at most 100 MB. */
#include <stdio.h>
#include <stdlib.h>

#include <cJSON.h>

#include "dataset.h"
#include "fileio.h"
#include "store_internal.h"

#define ST_MAX_INT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact in a double */
#define ST_MAX_HEADER 100000000       /* the safetensors library's limit on the JSON header */

static int st_dtype(const char *s, hp_dtype *dt) {
    static const struct {
        const char *name;
        hp_dtype dt;
    } tab[] = {{"F32", HP_F32}, {"F16", HP_F16}, {"BF16", HP_BF16},
               {"I32", HP_I32}, {"I64", HP_I64}, {"U8", HP_U8}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(s, tab[i].name)) {
            *dt = tab[i].dt;
            return 0;
        }
    return -1;
}

/* A JSON number that is a non-negative integer exactly representable in a double. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(hp_store *s, size_t *cap, const hp_mapping *m, const cJSON *it,
                        size_t data0, hp_err *e) {
    const char *path = m->path, *name = it->string;
    if (!cJSON_IsObject(it))
        return hp_errf(e, "%s: tensor '%s': entry is not a JSON object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(jd))
        return hp_errf(e, "%s: tensor '%s': missing or non-string 'dtype'", path, name);
    if (!cJSON_IsArray(js))
        return hp_errf(e, "%s: tensor '%s': missing or non-array 'shape'", path, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return hp_errf(e, "%s: tensor '%s': 'data_offsets' must be an array [begin, end]", path,
                       name);
    hp_dtype dt;
    if (st_dtype(jd->valuestring, &dt))
        return hp_errf(e, "%s: tensor '%s': unsupported dtype '%s' (F32, F16, BF16, I32, I64, U8)",
                       path, name, jd->valuestring);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > 4)
        return hp_errf(e, "%s: tensor '%s': %d dimensions, at most 4 supported", path, name, ndim);

    int64_t shape[4] = {0};
    uint64_t nelem = 1;
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, js) {
        uint64_t d;
        if (json_u64(v, &d))
            return hp_errf(e, "%s: tensor '%s': shape[%d] is not a non-negative integer below 2^53",
                           path, name, k);
        if (d && nelem > UINT64_MAX / d)
            return hp_errf(e, "%s: tensor '%s': element count overflows", path, name);
        nelem *= d;
        shape[k++] = (int64_t)d;
    }
    int ok;
    size_t nbytes = hp_dtype_nbytes(dt, nelem, &ok);
    if (!ok) return hp_errf(e, "%s: tensor '%s': byte size overflows", path, name);

    uint64_t off[2];
    for (int i = 0; i < 2; i++)
        if (json_u64(cJSON_GetArrayItem(jo, i), &off[i]))
            return hp_errf(
                e, "%s: tensor '%s': data_offsets[%d] is not a non-negative integer below 2^53",
                path, name, i);
    size_t dlen = m->size - data0;
    if (off[0] > off[1] || off[1] > dlen)
        return hp_errf(
            e,
            "%s: tensor '%s': data_offsets [%llu, %llu] outside the data buffer of %zu bytes "
            "(file offset %zu)",
            path, name, (unsigned long long)off[0], (unsigned long long)off[1], dlen, data0);
    if (off[1] - off[0] != nbytes)
        return hp_errf(e,
                       "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s x %llu "
                       "elements need %zu",
                       path, name, (unsigned long long)off[0], (unsigned long long)off[1],
                       (unsigned long long)(off[1] - off[0]), hp_dtype_name(dt),
                       (unsigned long long)nelem, nbytes);

    hp_tensor *t = hp_store_new_tensor(s, cap, path, e);
    if (!t) return -1;
    t->name = strdup(name);
    if (!t->name) {
        s->n--;
        return hp_errf(e, "%s: out of memory", path);
    }
    t->dt = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof shape);
    t->nelem = nelem;
    t->data = (const uint8_t *)m->base + data0 + off[0];
    t->nbytes = nbytes;
    t->file = m->path;
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const hp_tensor *x = *(const hp_tensor *const *)a, *y = *(const hp_tensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes; /* empty before non-empty */
}

/* The tensors t[first..s->n) of the file m, whose data buffer starts at file byte data0, must
 * cover the buffer [0, dlen) with no gap, no overlap and no trailing byte (the safetensors
 * library's InvalidOffset and MetadataIncompleteBuffer rules). Offsets in messages are the
 * header's data_offsets, with the file byte in parentheses. */
static int check_layout(const hp_store *s, int first, const hp_mapping *m, size_t data0,
                        hp_err *e) {
    const char *path = m->path;
    const uint8_t *buf = (const uint8_t *)m->base + data0;
    size_t dlen = m->size - data0, n = (size_t)(s->n - first);
    const hp_tensor **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return hp_errf(e, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) v[i] = &s->t[first + (int)i];
    qsort(v, n, sizeof *v, cmp_begin);
    size_t pos = 0; /* where the next tensor must begin */
    const hp_tensor *prev = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t b = (size_t)(v[i]->data - buf), end = b + v[i]->nbytes;
        if (b < pos)
            rc = hp_errf(e,
                         "%s: tensor '%s': data_offsets [%zu, %zu] (file bytes %zu..%zu) overlap "
                         "tensor '%s', which ends at %zu",
                         path, v[i]->name, b, end, data0 + b, data0 + end, prev->name, pos);
        else if (b > pos && prev)
            rc = hp_errf(e,
                         "%s: tensor '%s': data_offsets [%zu, %zu] (file bytes %zu..%zu) leave a "
                         "gap of %zu bytes after tensor '%s', which ends at %zu",
                         path, v[i]->name, b, end, data0 + b, data0 + end, b - pos, prev->name,
                         pos);
        else if (b > pos)
            rc = hp_errf(e,
                         "%s: tensor '%s': data_offsets [%zu, %zu] (file bytes %zu..%zu) leave a "
                         "gap of %zu bytes at the start of the data buffer (the first tensor "
                         "must begin at 0)",
                         path, v[i]->name, b, end, data0 + b, data0 + end, b);
        prev = v[i];
        pos = end;
    }
    if (!rc && pos != dlen) {
        if (prev)
            rc = hp_errf(e,
                         "%s: %zu trailing bytes: the last tensor '%s' ends at data offset %zu "
                         "(file byte %zu) but the file runs to byte %zu",
                         path, dlen - pos, prev->name, pos, data0 + pos, m->size);
        else
            rc = hp_errf(e,
                         "%s: %zu trailing bytes: no tensor is stored but the data buffer (file "
                         "bytes %zu..%zu) is not empty",
                         path, dlen, data0, m->size);
    }
    free(v);
    return rc;
}

/* Parses the mapped file s->maps[mi] and appends its tensors. */
static int parse_file(hp_store *s, size_t *cap, int mi, hp_err *e) {
    const hp_mapping *m = &s->maps[mi];
    const char *path = m->path;
    const uint8_t *base = m->base;
    if (m->size < 8)
        return hp_errf(e,
                       "%s: truncated: %zu bytes, a safetensors file starts with an 8-byte header "
                       "length",
                       path, m->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | base[i];
    if (hlen > m->size - 8)
        return hp_errf(e,
                       "%s: byte 0: header length %llu runs past the end of the file (%zu bytes)",
                       path, (unsigned long long)hlen, m->size);
    if (hlen < 2)
        return hp_errf(e, "%s: byte 0: header length %llu is too small for a JSON object", path,
                       (unsigned long long)hlen);
    if (hlen > ST_MAX_HEADER)
        return hp_errf(e, "%s: byte 0: header length %llu exceeds the format's limit of %d bytes",
                       path, (unsigned long long)hlen, ST_MAX_HEADER);
    const char *hj = (const char *)base + 8, *end = NULL;
    if (hj[0] != '{')
        return hp_errf(e, "%s: byte 8: the header must start with '{', found byte 0x%02x", path,
                       (unsigned)(uint8_t)hj[0]);
    long bad = hp_utf8_invalid_at(hj, (size_t)hlen);
    if (bad >= 0)
        return hp_errf(e, "%s: byte %zu: the header is not valid UTF-8", path, 8 + (size_t)bad);
    cJSON *root = cJSON_ParseWithLengthOpts(hj, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = 8 + (end && end >= hj && end <= hj + hlen ? (size_t)(end - hj) : 0);
        return hp_errf(e, "%s: byte %zu: header is not valid JSON", path, at);
    }
    int rc = 0;
    /* Writers pad the header with spaces to align the data buffer; JSON whitespace is accepted
     * there, as the safetensors library's JSON reader does; anything else is corruption. */
    for (const char *p = end; p < hj + hlen; p++)
        if (!*p || !strchr(" \t\n\r", *p)) {
            rc = hp_errf(e, "%s: byte %zu: unexpected bytes after the header JSON", path,
                         (size_t)(8 + (p - hj)));
            goto out;
        }
    int first = s->n;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!strcmp(it->string, "__metadata__")) continue;
        if ((rc = parse_tensor(s, cap, m, it, 8 + (size_t)hlen, e))) goto out;
    }
    rc = check_layout(s, first, m, 8 + (size_t)hlen, e);
out:
    cJSON_Delete(root);
    return rc;
}

static int open_single(hp_store *s, size_t *cap, const char *path, hp_err *e) {
    int mi = hp_store_add_map(s, path, e);
    if (mi < 0) return -1;
    return parse_file(s, cap, mi, e);
}

/* Shard names come from the index file: keep them inside the checkpoint's directory. */
static int shard_name_ok(const char *n) {
    if (!*n || n[0] == '/') return 0;
    for (const char *p = n; *p; p++)
        if (p[0] == '.' && p[1] == '.' && (p == n || p[-1] == '/') && (p[2] == '/' || !p[2]))
            return 0;
    return 1;
}

static int open_index(hp_store *s, size_t *cap, const char *index_path, hp_err *e) {
    char *text = NULL, *dir = NULL;
    size_t len;
    if (hp_read_file(index_path, &text, &len, e)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int rc = 0;
    if (!root) {
        rc = hp_errf(e, "%s: byte %zu: not valid JSON", index_path,
                     end && end >= text && end <= text + len ? (size_t)(end - text) : (size_t)0);
        goto out;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        rc = hp_errf(e, "%s: missing or empty 'weight_map' object", index_path);
        goto out;
    }
    const char *slash = strrchr(index_path, '/');
    size_t dl = slash ? (size_t)(slash - index_path) : 1;
    dir = malloc(dl + 1);
    if (!dir) {
        rc = hp_errf(e, "%s: out of memory", index_path);
        goto out;
    }
    memcpy(dir, slash ? index_path : ".", dl);
    dir[dl] = 0;

    /* Pass 1: open every shard once, in order of first mention. */
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it) || !shard_name_ok(it->valuestring)) {
            rc = hp_errf(e, "%s: weight_map entry '%s' is not a relative shard file name",
                         index_path, it->string);
            goto out;
        }
        size_t pl = dl + strlen(it->valuestring) + 2;
        char *sp = malloc(pl);
        if (!sp) {
            rc = hp_errf(e, "%s: out of memory", index_path);
            goto out;
        }
        snprintf(sp, pl, "%s/%s", dir, it->valuestring);
        int seen = 0;
        for (int i = 0; i < s->nmaps && !seen; i++) seen = !strcmp(s->maps[i].path, sp);
        if (!seen) rc = open_single(s, cap, sp, e);
        free(sp);
        if (rc) goto out;
    }
    if ((rc = hp_store_index(s, e))) goto out;

    /* Pass 2: every listed tensor must be in the shard the index names. */
    cJSON_ArrayForEach(it, wm) {
        const hp_tensor *t = hp_store_find(s, it->string);
        const char *want = it->valuestring;
        if (!t) {
            rc = hp_errf(e, "%s/%s: tensor '%s' listed in %s is missing from this shard", dir, want,
                         it->string, index_path);
            goto out;
        }
        /* every shard path was built above as dir + "/" + name */
        if (strcmp(t->file + dl + 1, want)) {
            rc = hp_errf(e, "%s: tensor '%s' is stored in %s but the index maps it to %s",
                         index_path, it->string, t->file, want);
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    free(text);
    free(dir);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int hp_store_open_safetensors(hp_store *s, const char *path, hp_err *e) {
    memset(s, 0, sizeof *s);
    size_t cap = 0;
    int rc;
    if (hp_is_dir(path)) {
        size_t pl = strlen(path) + 40;
        char *p = malloc(pl);
        if (!p) return hp_errf(e, "%s: out of memory", path);
        snprintf(p, pl, "%s/model.safetensors.index.json", path);
        if (hp_file_exists(p)) {
            rc = open_index(s, &cap, p, e);
        } else {
            snprintf(p, pl, "%s/model.safetensors", path);
            rc = hp_file_exists(p)
                     ? open_single(s, &cap, p, e)
                     : hp_errf(e, "%s: no model.safetensors or model.safetensors.index.json", path);
        }
        free(p);
    } else if (ends_with(path, ".json")) {
        rc = open_index(s, &cap, path, e);
    } else {
        rc = open_single(s, &cap, path, e);
    }
    /* open_index already sorted (it needs lookups); sorting again is cheap and idempotent */
    if (!rc) rc = hp_store_index(s, e);
    if (rc) hp_store_close(s);
    return rc;
}
