/* npy.c: reader and atomic writer for NumPy .npy files (format 1.0, 2.0, 3.0). The header is a
 * Python dict literal; only the subset NumPy itself writes for plain little-endian numeric
 * arrays is accepted ('<f4', '<f8', '<i4', '<i8', fortran_order False), and the data must be
 * exactly shape × itemsize bytes, so a truncated or padded file is an error, not a silent
 * partial read. */
#include "npy.h"
#include "fileio.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64 /* the format spec asks writers to align the data to 64 bytes */

typedef enum { NPY_F4, NPY_F8, NPY_I4, NPY_I8 } npy_kind;

static const struct {
    const char *descr;
    size_t size;
    int is_float;
} npy_types[] = {
    [NPY_F4] = {"<f4", 4, 1},
    [NPY_F8] = {"<f8", 8, 1},
    [NPY_I4] = {"<i4", 4, 0},
    [NPY_I8] = {"<i8", 8, 0},
};

typedef struct npy_header {
    npy_kind kind;
    int ndim;
    int64_t shape[HP_NPY_MAXDIM];
    size_t nelem;
    size_t data_off;
} npy_header;

/* Formats a shape as NumPy prints it: "()", "(5,)", "(3, 4)". */
static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
}

/* ---- header dict parser ------------------------------------------------------------------ */

typedef struct hparser {
    const char *path;
    const char *s; /* header text (not NUL-terminated in the file; copied) */
    size_t n, p, base; /* length, cursor, byte offset of s in the file (for messages) */
    hp_err *e;
} hparser;

static int perr(hparser *h, const char *what) {
    return hp_errf(h->e, "%s: malformed .npy header at byte %zu: %s", h->path, h->base + h->p, what);
}

static void skip_ws(hparser *h) {
    while (h->p < h->n && (h->s[h->p] == ' ' || h->s[h->p] == '\t' || h->s[h->p] == '\n' ||
                           h->s[h->p] == '\r'))
        h->p++;
}

static int expect(hparser *h, char c) {
    skip_ws(h);
    if (h->p >= h->n || h->s[h->p] != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return perr(h, msg);
    }
    h->p++;
    return 0;
}

/* A quoted Python string without escapes (NumPy never writes any in these headers). */
static int parse_str(hparser *h, char *out, size_t cap) {
    skip_ws(h);
    if (h->p >= h->n || (h->s[h->p] != '\'' && h->s[h->p] != '"')) return perr(h, "expected a string");
    char q = h->s[h->p++];
    size_t len = 0;
    while (h->p < h->n && h->s[h->p] != q) {
        if (h->s[h->p] == '\\') return perr(h, "escapes in strings are not supported");
        if (len + 1 >= cap) return perr(h, "string too long");
        out[len++] = h->s[h->p++];
    }
    if (h->p >= h->n) return perr(h, "unterminated string");
    h->p++;
    out[len] = 0;
    return 0;
}

static int parse_bool(hparser *h, int *v) {
    skip_ws(h);
    if (h->n - h->p >= 4 && !memcmp(h->s + h->p, "True", 4)) {
        *v = 1;
        h->p += 4;
    } else if (h->n - h->p >= 5 && !memcmp(h->s + h->p, "False", 5)) {
        *v = 0;
        h->p += 5;
    } else {
        return perr(h, "expected True or False");
    }
    return 0;
}

/* A tuple of non-negative ints; a 1-tuple needs its trailing comma, as in Python. */
static int parse_shape(hparser *h, npy_header *hd) {
    if (expect(h, '(')) return -1;
    hd->ndim = 0;
    for (;;) {
        skip_ws(h);
        if (h->p < h->n && h->s[h->p] == ')') { /* "()" or after a trailing comma */
            h->p++;
            break;
        }
        if (h->p >= h->n || h->s[h->p] < '0' || h->s[h->p] > '9')
            return perr(h, "expected a non-negative integer in shape");
        if (hd->ndim == HP_NPY_MAXDIM) return perr(h, "too many dimensions (max 8)");
        int64_t v = 0;
        while (h->p < h->n && h->s[h->p] >= '0' && h->s[h->p] <= '9') {
            int dgt = h->s[h->p] - '0';
            if (v > (INT64_MAX - dgt) / 10) return perr(h, "shape dimension overflows int64");
            v = v * 10 + dgt;
            h->p++;
        }
        hd->shape[hd->ndim++] = v;
        skip_ws(h);
        if (h->p < h->n && h->s[h->p] == ',') {
            h->p++;
            continue;
        }
        if (h->p < h->n && h->s[h->p] == ')') {
            /* "(5)" is an int in Python, not a tuple; NumPy always writes "(5,)". */
            if (hd->ndim == 1) return perr(h, "a 1-D shape must be written (n,)");
            h->p++;
            break;
        }
        return perr(h, "expected ',' or ')' in shape");
    }
    return 0;
}

static int parse_dict(hparser *h, npy_header *hd) {
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    char descr[32] = "";
    if (expect(h, '{')) return -1;
    for (;;) {
        skip_ws(h);
        if (h->p < h->n && h->s[h->p] == '}') {
            h->p++;
            break;
        }
        char key[32];
        if (parse_str(h, key, sizeof key) || expect(h, ':')) return -1;
        if (!strcmp(key, "descr")) {
            if (have_descr++) return perr(h, "duplicate key 'descr'");
            if (parse_str(h, descr, sizeof descr)) return -1;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++) return perr(h, "duplicate key 'fortran_order'");
            if (parse_bool(h, &fortran)) return -1;
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return perr(h, "duplicate key 'shape'");
            if (parse_shape(h, hd)) return -1;
        } else {
            return perr(h, "unexpected key (only descr, fortran_order, shape)");
        }
        skip_ws(h);
        if (h->p < h->n && h->s[h->p] == ',') {
            h->p++;
            continue;
        }
        if (expect(h, '}')) return -1;
        break;
    }
    skip_ws(h);
    if (h->p != h->n) return perr(h, "trailing bytes after the header dict");
    if (!have_descr) return hp_errf(h->e, "%s: .npy header has no 'descr'", h->path);
    if (!have_fortran) return hp_errf(h->e, "%s: .npy header has no 'fortran_order'", h->path);
    if (!have_shape) return hp_errf(h->e, "%s: .npy header has no 'shape'", h->path);
    if (fortran)
        return hp_errf(h->e, "%s: fortran_order True is not supported (save a C-ordered array)",
                       h->path);
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (!strcmp(descr, npy_types[i].descr)) {
            hd->kind = (npy_kind)i;
            return 0;
        }
    if (descr[0] == '>')
        return hp_errf(h->e, "%s: big-endian dtype '%s' is not supported", h->path, descr);
    return hp_errf(h->e, "%s: unsupported dtype '%s' (expected <f4, <f8, <i4 or <i8)", h->path,
                   descr);
}

/* Parses magic, version and header of a file image of `size` bytes. */
static int parse_header(const char *path, const unsigned char *b, size_t size, npy_header *hd,
                        hp_err *e) {
    if (size < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN))
        return hp_errf(e, "%s: not a .npy file (bad magic)", path);
    int major = b[6], minor = b[7];
    size_t hlen, hstart;
    if (major == 1) {
        if (size < 10) return hp_errf(e, "%s: truncated .npy preamble (%zu bytes)", path, size);
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return hp_errf(e, "%s: truncated .npy preamble (%zu bytes)", path, size);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        return hp_errf(e, "%s: unsupported .npy format version %d.%d", path, major, minor);
    }
    if (minor != 0) return hp_errf(e, "%s: unsupported .npy format version %d.%d", path, major, minor);
    if (hlen > size - hstart)
        return hp_errf(e, "%s: truncated .npy header: it declares %zu bytes but the file has %zu after byte %zu",
                       path, hlen, size - hstart, hstart);
    memset(hd, 0, sizeof *hd);
    hparser h = {path, (const char *)b + hstart, hlen, 0, hstart, e};
    if (parse_dict(&h, hd)) return -1;
    hd->data_off = hstart + hlen;

    size_t nelem = 1, nbytes;
    for (int i = 0; i < hd->ndim; i++)
        if ((uint64_t)hd->shape[i] > SIZE_MAX || !hp_mul_ok(nelem, (size_t)hd->shape[i], &nelem)) {
            char sh[256];
            shape_str(sh, sizeof sh, hd->ndim, hd->shape);
            return hp_errf(e, "%s: shape %s overflows the address space", path, sh);
        }
    size_t item = npy_types[hd->kind].size;
    if (!hp_mul_ok(nelem, item, &nbytes)) {
        char sh[256];
        shape_str(sh, sizeof sh, hd->ndim, hd->shape);
        return hp_errf(e, "%s: shape %s of %s overflows the address space", path, sh,
                       npy_types[hd->kind].descr);
    }
    if (size - hd->data_off != nbytes) {
        char sh[256];
        shape_str(sh, sizeof sh, hd->ndim, hd->shape);
        return hp_errf(e, "%s: data is %zu bytes but shape %s of %s needs %zu", path,
                       size - hd->data_off, sh, npy_types[hd->kind].descr, nbytes);
    }
    hd->nelem = nelem;
    return 0;
}

/* Maps the file, parses it, checks the dtype kind, and hands back a malloc'ed copy converted
 * to the requested element type. */
typedef enum { OUT_F32, OUT_F64, OUT_I32 } out_type;

static int read_npy(const char *path, out_type ot, void **data, int *ndim,
                    int64_t shape[HP_NPY_MAXDIM], hp_err *e) {
    void *map;
    size_t size;
    *data = NULL;
    if (hp_mmap_file(path, &map, &size, e)) return -1;
    npy_header hd;
    int rc = -1;
    if (parse_header(path, map, size, &hd, e)) goto done;
    int want_float = ot != OUT_I32;
    if (npy_types[hd.kind].is_float != want_float) {
        hp_errf(e, "%s: dtype %s where a %s array is expected", path, npy_types[hd.kind].descr,
                want_float ? "float" : "integer");
        goto done;
    }
    size_t osize = ot == OUT_F64 ? 8 : 4, obytes;
    if (!hp_mul_ok(hd.nelem, osize, &obytes)) {
        hp_errf(e, "%s: array too large", path);
        goto done;
    }
    unsigned char *out = malloc(obytes ? obytes : 1); /* non-NULL even for empty arrays */
    if (!out) {
        hp_errf(e, "%s: out of memory (%zu bytes)", path, obytes);
        goto done;
    }
    /* memcpy per element: the data offset is only guaranteed 16-aligned by old writers. */
    const unsigned char *src = (const unsigned char *)map + hd.data_off;
    if ((ot == OUT_F32 && hd.kind == NPY_F4) || (ot == OUT_F64 && hd.kind == NPY_F8) ||
        (ot == OUT_I32 && hd.kind == NPY_I4)) {
        memcpy(out, src, obytes);
    } else if (ot == OUT_F64) { /* from f4: exact */
        for (size_t i = 0; i < hd.nelem; i++) {
            float f;
            memcpy(&f, src + 4 * i, 4);
            double d = f;
            memcpy(out + 8 * i, &d, 8);
        }
    } else if (ot == OUT_F32) { /* from f8: a finite value beyond float range is an error */
        for (size_t i = 0; i < hd.nelem; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            if (isfinite(d) && fabs(d) > FLT_MAX) {
                free(out);
                hp_errf(e, "%s: element %zu (%g) is out of float32 range", path, i, d);
                goto done;
            }
            float f = (float)d;
            memcpy(out + 4 * i, &f, 4);
        }
    } else { /* i8 -> i32, range checked */
        for (size_t i = 0; i < hd.nelem; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX) {
                free(out);
                hp_errf(e, "%s: element %zu (%" PRId64 ") does not fit in int32", path, i, v);
                goto done;
            }
            int32_t w = (int32_t)v;
            memcpy(out + 4 * i, &w, 4);
        }
    }
    *data = out;
    *ndim = hd.ndim;
    for (int i = 0; i < HP_NPY_MAXDIM; i++) shape[i] = i < hd.ndim ? hd.shape[i] : 0;
    rc = 0;
done:
    hp_munmap(map, size);
    return rc;
}

int hp_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[HP_NPY_MAXDIM], hp_err *e) {
    return read_npy(path, OUT_F32, (void **)data, ndim, shape, e);
}
int hp_npy_read_f64(const char *path, double **data, int *ndim, int64_t shape[HP_NPY_MAXDIM], hp_err *e) {
    return read_npy(path, OUT_F64, (void **)data, ndim, shape, e);
}
int hp_npy_read_i32(const char *path, int32_t **data, int *ndim, int64_t shape[HP_NPY_MAXDIM], hp_err *e) {
    return read_npy(path, OUT_I32, (void **)data, ndim, shape, e);
}

/* ---- writer ------------------------------------------------------------------------------ */

static int write_npy(const char *path, npy_kind kind, const void *data, int ndim,
                     const int64_t *shape, hp_err *e) {
    if (ndim < 0 || ndim > HP_NPY_MAXDIM)
        return hp_errf(e, "%s: cannot write %d dimensions (max %d)", path, ndim, HP_NPY_MAXDIM);
    size_t nelem = 1, nbytes;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return hp_errf(e, "%s: negative dimension %" PRId64, path, shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || !hp_mul_ok(nelem, (size_t)shape[i], &nelem))
            return hp_errf(e, "%s: shape overflows the address space", path);
    }
    if (!hp_mul_ok(nelem, npy_types[kind].size, &nbytes))
        return hp_errf(e, "%s: shape overflows the address space", path);
    if (nbytes && !data) return hp_errf(e, "%s: no data to write", path);

    /* The dict as NumPy writes it, then spaces and '\n' up to a multiple of 64 bytes in all. */
    char sh[8 * 24 + 8], hdr[512];
    shape_str(sh, sizeof sh, ndim, shape);
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       npy_types[kind].descr, sh);
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t hlen = padded - 10; /* ≤ 512: always a version 1.0 header */
    memset(hdr + len, ' ', hlen - (size_t)len - 1);
    hdr[hlen - 1] = '\n';
    unsigned char pre[10];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);

    hp_atomic_file af;
    if (hp_atomic_open(&af, path, e)) return -1;
    if (fwrite(pre, 1, 10, af.f) != 10 || fwrite(hdr, 1, hlen, af.f) != hlen ||
        (nbytes && fwrite(data, 1, nbytes, af.f) != nbytes)) {
        hp_atomic_abort(&af);
        return hp_errf(e, "%s: write failed", path);
    }
    return hp_atomic_commit(&af, e);
}

int hp_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, hp_err *e) {
    return write_npy(path, NPY_F4, data, ndim, shape, e);
}
int hp_npy_write_f64(const char *path, const double *data, int ndim, const int64_t *shape, hp_err *e) {
    return write_npy(path, NPY_F8, data, ndim, shape, e);
}
int hp_npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape, hp_err *e) {
    return write_npy(path, NPY_I4, data, ndim, shape, e);
}
