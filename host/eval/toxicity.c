/* toxicity.c: the exported alt-profanity-check classifier (toxicity.h): file reader, Python-exact
 * lowercasing and \w tokenising over tables from the file, tf-idf and the calibrated folds. */
#include "toxicity.h"
#include "dataset.h"
#include "fileio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define TOX_MAGIC "HPTOXCL1"
#define MAX_CP 0x10FFFFu

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct cursor {
    const unsigned char *p;
    size_t n, off;
    const char *path;
} cursor;

static int need(cursor *c, size_t k, const char *what, hp_err *e) {
    if (c->n - c->off < k)
        return hp_errf(e, "%s: truncated at byte %zu (reading %s)", c->path, c->off, what);
    return 0;
}

/* The file is little-endian; so is every machine we build for (checked in hp_toxclf_load). */
static int rd_u32(cursor *c, uint32_t *v, const char *what, hp_err *e) {
    if (need(c, 4, what, e)) return -1;
    memcpy(v, c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int rd_bytes(cursor *c, void *dst, size_t k, const char *what, hp_err *e) {
    if (need(c, k, what, e)) return -1;
    memcpy(dst, c->p + c->off, k);
    c->off += k;
    return 0;
}

static uint64_t hash_term(const char *s, size_t n) { return hp_fnv1a(HP_FNV_OFFSET, s, n); }

/* Column of term s[0..n), or -1. */
static int lookup(const hp_toxclf *c, const char *s, size_t n) {
    size_t mask = c->n_slots - 1;
    for (size_t i = hash_term(s, n) & mask;; i = (i + 1) & mask) {
        uint32_t v = c->slots[i];
        if (!v) return -1;
        const char *t = c->terms[v - 1];
        if (strlen(t) == n && !memcmp(t, s, n)) return (int)(v - 1);
    }
}

/* Reads count inclusive ranges; they must be ascending, disjoint and within Unicode. */
static int rd_ranges(cursor *c, uint32_t **out, uint32_t count, const char *what, hp_err *e) {
    size_t at = c->off;
    if (need(c, (size_t)count * 8, what, e)) return -1;
    *out = malloc((size_t)(count ? count : 1) * 8);
    if (!*out) return hp_errf(e, "%s: out of memory", c->path);
    if (rd_bytes(c, *out, (size_t)count * 8, what, e)) return -1;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t lo = (*out)[2 * i], hi = (*out)[2 * i + 1];
        if (lo > hi || hi > MAX_CP || (i && lo <= (*out)[2 * i - 1]))
            return hp_errf(e, "%s: %s range %u (byte %zu) is out of order or past U+10FFFF", c->path,
                           what, i, at + (size_t)i * 8);
    }
    return 0;
}

void hp_toxclf_free(hp_toxclf *c) {
    if (!c) return;
    if (c->terms)
        for (int j = 0; j < c->V; j++) free(c->terms[j]);
    free(c->terms);
    free(c->source);
    free(c->idf);
    free(c->coef);
    free(c->intercept);
    free(c->sig_a);
    free(c->sig_b);
    free(c->slots);
    free(c->word);
    free(c->lower);
    free(c->ignorable);
    free(c->cased);
    memset(c, 0, sizeof *c);
}

static int load_body(cursor *cur, hp_toxclf *c, hp_err *e) {
    const char *path = cur->path;
    if (need(cur, 8, "magic", e)) return -1;
    if (memcmp(cur->p, TOX_MAGIC, 8))
        return hp_errf(e, "%s: not a headpursuit toxicity classifier (magic is not %s)", path, TOX_MAGIC);
    cur->off = 8;
    /* crc32 of everything before the last four bytes: a damaged or edited file stops here. */
    if (cur->n < 12) return hp_errf(e, "%s: truncated at byte %zu (reading the checksum)", path, cur->n);
    uint32_t want;
    memcpy(&want, cur->p + cur->n - 4, 4);
    uLong got = crc32(0L, cur->p, (uInt)(cur->n - 4));
    if ((uint32_t)got != want)
        return hp_errf(e, "%s: checksum mismatch (crc32 %08x, file says %08x): the file is damaged", path,
                       (unsigned)got, want);
    cur->n -= 4;

    uint32_t slen;
    if (rd_u32(cur, &slen, "source length", e)) return -1;
    if (slen > 4096) return hp_errf(e, "%s: source string of %u bytes at byte 8 is too long", path, slen);
    if (!(c->source = calloc(slen + 1, 1))) return hp_errf(e, "%s: out of memory", path);
    if (rd_bytes(cur, c->source, slen, "source", e)) return -1;

    uint32_t h[6];
    size_t hdr = cur->off;
    for (int i = 0; i < 6; i++)
        if (rd_u32(cur, &h[i], "header", e)) return -1;
    if (h[0] == 0 || h[0] > (1u << 24) || h[1] == 0 || h[1] > 64 || h[2] == 0 || h[2] > MAX_CP ||
        h[3] > MAX_CP || h[4] > MAX_CP || h[5] > MAX_CP)
        return hp_errf(e, "%s: header at byte %zu has impossible sizes (V=%u K=%u)", path, hdr, h[0], h[1]);
    c->V = (int)h[0];
    c->K = (int)h[1];
    c->n_word = (int)h[2];
    c->n_lower = (int)h[3];
    c->n_ignorable = (int)h[4];
    c->n_cased = (int)h[5];
    size_t V = (size_t)c->V, K = (size_t)c->K;

    c->terms = calloc(V, sizeof *c->terms);
    c->n_slots = 1;
    while (c->n_slots < 2 * V) c->n_slots <<= 1;
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    c->idf = malloc(V * sizeof(float));
    c->coef = malloc(K * V * sizeof(float));
    c->intercept = malloc(K * sizeof(double));
    c->sig_a = malloc(K * sizeof(double));
    c->sig_b = malloc(K * sizeof(double));
    if (!c->terms || !c->slots || !c->idf || !c->coef || !c->intercept || !c->sig_a || !c->sig_b)
        return hp_errf(e, "%s: out of memory", path);

    for (size_t j = 0; j < V; j++) {
        size_t at = cur->off;
        if (need(cur, 1, "term length", e)) return -1;
        size_t len = cur->p[cur->off++];
        if (len == 0 || !(c->terms[j] = calloc(len + 1, 1)))
            return hp_errf(e, "%s: term %zu at byte %zu is empty (or out of memory)", path, j, at);
        if (rd_bytes(cur, c->terms[j], len, "term", e)) return -1;
        if (hp_utf8_invalid_at(c->terms[j], len) >= 0)
            return hp_errf(e, "%s: term %zu at byte %zu is not UTF-8", path, j, at);
        if (lookup(c, c->terms[j], len) >= 0)
            return hp_errf(e, "%s: term %zu '%s' at byte %zu is a duplicate", path, j, c->terms[j], at);
        size_t mask = c->n_slots - 1, i = hash_term(c->terms[j], len) & mask;
        while (c->slots[i]) i = (i + 1) & mask;
        c->slots[i] = (uint32_t)j + 1;
    }
    size_t at = cur->off;
    if (rd_bytes(cur, c->idf, V * sizeof(float), "idf", e)) return -1;
    for (size_t j = 0; j < V; j++)
        if (!isfinite(c->idf[j]) || c->idf[j] <= 0)
            return hp_errf(e, "%s: idf[%zu] at byte %zu is %g (must be finite and > 0)", path, j,
                           at + j * 4, c->idf[j]);
    for (size_t k = 0; k < K; k++) {
        double abc[3];
        at = cur->off;
        if (rd_bytes(cur, abc, sizeof abc, "fold intercept and sigmoid", e)) return -1;
        if (!isfinite(abc[0]) || !isfinite(abc[1]) || !isfinite(abc[2]))
            return hp_errf(e, "%s: fold %zu at byte %zu has a non-finite intercept or sigmoid", path, k, at);
        c->intercept[k] = abc[0], c->sig_a[k] = abc[1], c->sig_b[k] = abc[2];
        at = cur->off;
        float *w = c->coef + k * V;
        if (rd_bytes(cur, w, V * sizeof(float), "fold weights", e)) return -1;
        for (size_t j = 0; j < V; j++)
            if (!isfinite(w[j]))
                return hp_errf(e, "%s: fold %zu weight %zu at byte %zu is not finite", path, k, j, at + j * 4);
    }
    if (rd_ranges(cur, &c->word, h[2], "word-character", e)) return -1;
    at = cur->off;
    if (need(cur, (size_t)h[3] * 16, "lowercase table", e)) return -1;
    if (!(c->lower = malloc((size_t)(h[3] ? h[3] : 1) * 16))) return hp_errf(e, "%s: out of memory", path);
    if (rd_bytes(cur, c->lower, (size_t)h[3] * 16, "lowercase table", e)) return -1;
    for (uint32_t i = 0; i < h[3]; i++) {
        const uint32_t *r = c->lower + 4 * i;
        if (r[0] > MAX_CP || r[1] < 1 || r[1] > 2 || r[2] > MAX_CP || r[3] > MAX_CP ||
            (i && r[0] <= r[-4]))
            return hp_errf(e, "%s: lowercase entry %u at byte %zu is out of order or malformed", path, i,
                           at + (size_t)i * 16);
    }
    if (rd_ranges(cur, &c->ignorable, h[4], "case-ignorable", e)) return -1;
    if (rd_ranges(cur, &c->cased, h[5], "cased", e)) return -1;
    if (cur->off != cur->n)
        return hp_errf(e, "%s: %zu unexpected bytes at byte %zu before the checksum", path, cur->n - cur->off,
                       cur->off);
    return 0;
}

int hp_toxclf_load(const char *path, hp_toxclf *c, hp_err *e) {
    const uint32_t one = 1;
    unsigned char little;
    memcpy(&little, &one, 1);
    if (!little) return hp_errf(e, "%s: the classifier file is little-endian; this machine is not", path);
    memset(c, 0, sizeof *c);
    char *data;
    size_t len;
    if (hp_read_file(path, &data, &len, e)) return -1;
    cursor cur = {(const unsigned char *)data, len, 0, path};
    int rc = load_body(&cur, c, e);
    free(data);
    if (rc) hp_toxclf_free(c);
    return rc;
}

int hp_toxclf_default_path(char *out, size_t cap) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return snprintf(out, cap, "data/toxicity/profanity_check.bin") >= (int)cap ? -1 : 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    return snprintf(out, cap, "%s/data/toxicity/profanity_check.bin", exe) >= (int)cap ? -1 : 0;
}

/* ---- text ----------------------------------------------------------------------------------- */

static int in_ranges(const uint32_t *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[2 * mid]) hi = mid - 1;
        else if (cp > r[2 * mid + 1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static const uint32_t *lower_entry(const hp_toxclf *c, uint32_t cp) {
    int lo = 0, hi = c->n_lower - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint32_t k = c->lower[4 * mid];
        if (cp < k) hi = mid - 1;
        else if (cp > k) lo = mid + 1;
        else return c->lower + 4 * mid;
    }
    return NULL;
}

/* Decodes UTF-8; a byte that does not start a valid sequence becomes U+FFFD. Returns the count. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *out) {
    size_t i = 0, k = 0;
    while (i < n) {
        unsigned b = p[i];
        if (b < 0x80) {
            out[k++] = b, i++;
            continue;
        }
        long bad = hp_utf8_invalid_at((const char *)p + i, n - i < 4 ? n - i : 4);
        size_t len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (bad == 0 || len > n - i) {
            out[k++] = 0xFFFD, i++;
            continue;
        }
        /* hp_utf8_invalid_at checked the first sequence; a later one in the window may fail. */
        uint32_t cp = len == 2 ? b & 0x1f : len == 3 ? b & 0x0f : b & 0x07;
        for (size_t t = 1; t < len; t++) cp = (cp << 6) | (p[i + t] & 0x3f);
        out[k++] = cp;
        i += len;
    }
    return k;
}

static size_t utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* CPython's str.lower() for U+03A3: final sigma when a cased letter precedes it (case-ignorable
 * characters skipped) and none follows (same skipping). */
static int final_sigma(const hp_toxclf *c, const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && in_ranges(c->ignorable, c->n_ignorable, s[j - 1])) j--;
    if (j == 0 || !in_ranges(c->cased, c->n_cased, s[j - 1])) return 0;
    for (j = i + 1; j < n && in_ranges(c->ignorable, c->n_ignorable, s[j]); j++) {}
    return j == n || !in_ranges(c->cased, c->n_cased, s[j]);
}

static int is_word(const hp_toxclf *c, uint32_t cp) { return in_ranges(c->word, c->n_word, cp); }

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Vocabulary columns of the tokens of text, in text order: *cols (free it), *n_cols. */
static int token_columns(const hp_toxclf *c, const char *text, size_t n, int **cols, size_t *n_cols,
                         hp_err *e) {
    *cols = NULL;
    *n_cols = 0;
    size_t cap_cp;
    if (!hp_mul_ok(n ? n : 1, 2 * sizeof(uint32_t), &cap_cp)) return hp_errf(e, "text too long");
    uint32_t *cp = malloc((n ? n : 1) * sizeof(uint32_t));
    uint32_t *lo = malloc(cap_cp);
    char *buf = malloc(4 * 256 + 4);
    if (!cp || !lo || !buf) {
        free(cp), free(lo), free(buf);
        return hp_errf(e, "out of memory scoring a text of %zu bytes", n);
    }
    size_t m = utf8_decode((const unsigned char *)text, n, cp), k = 0;
    for (size_t i = 0; i < m; i++) {
        if (cp[i] == 0x3A3) {
            lo[k++] = final_sigma(c, cp, m, i) ? 0x3C2 : 0x3C3;
            continue;
        }
        const uint32_t *r = cp[i] < 0x80 ? NULL : lower_entry(c, cp[i]);
        if (cp[i] >= 'A' && cp[i] <= 'Z') lo[k++] = cp[i] + 32;
        else if (!r) lo[k++] = cp[i];
        else
            for (uint32_t t = 0; t < r[1]; t++) lo[k++] = r[2 + t];
    }
    int *out = malloc((k / 2 + 1) * sizeof(int)); /* a token takes two code points */
    if (!out) {
        free(cp), free(lo), free(buf);
        return hp_errf(e, "out of memory scoring a text of %zu bytes", n);
    }
    size_t nc = 0;
    for (size_t i = 0; i < k;) {
        if (!is_word(c, lo[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < k && is_word(c, lo[j])) j++;
        /* Terms are at most 255 bytes, so at most 255 code points: longer runs cannot match. */
        if (j - i >= 2 && j - i <= 255) {
            size_t len = 0;
            for (size_t t = i; t < j; t++) len += utf8_encode(lo[t], buf + len);
            int col = len <= 255 ? lookup(c, buf, len) : -1;
            if (col >= 0) out[nc++] = col;
        }
        i = j;
    }
    free(cp), free(lo), free(buf);
    *cols = out;
    *n_cols = nc;
    return 0;
}

int hp_toxclf_terms(const hp_toxclf *c, const char *text, size_t n, int **cols, int **counts,
                    int *n_terms, hp_err *e) {
    int *tok;
    size_t nt;
    *cols = *counts = NULL;
    *n_terms = 0;
    if (token_columns(c, text, n, &tok, &nt, e)) return -1;
    qsort(tok, nt, sizeof *tok, cmp_int);
    int *cnt = malloc((nt + 1) * sizeof(int));
    if (!cnt) {
        free(tok);
        return hp_errf(e, "out of memory");
    }
    int u = 0;
    for (size_t i = 0; i < nt; i++) {
        if (u && tok[u - 1] == tok[i]) {
            cnt[u - 1]++;
        } else {
            tok[u] = tok[i];
            cnt[u++] = 1;
        }
    }
    *cols = tok;
    *counts = cnt;
    *n_terms = u;
    return 0;
}

int hp_toxclf_prob(const hp_toxclf *c, const char *text, size_t n, double *prob, hp_err *e) {
    int *cols, *counts, u;
    if (hp_toxclf_terms(c, text, n, &cols, &counts, &u, e)) return -1;
    double norm2 = 0;
    for (int i = 0; i < u; i++) {
        double x = (double)counts[i] * c->idf[cols[i]];
        norm2 += x * x;
    }
    double inv = norm2 > 0 ? 1.0 / sqrt(norm2) : 1.0; /* sklearn leaves an all-zero row at zero */
    double p = 0;
    for (int k = 0; k < c->K; k++) {
        const float *w = c->coef + (size_t)k * c->V;
        double s = 0;
        for (int i = 0; i < u; i++) s += (double)counts[i] * c->idf[cols[i]] * inv * w[cols[i]];
        s += c->intercept[k];
        p += 1.0 / (1.0 + exp(c->sig_a[k] * s + c->sig_b[k]));
    }
    free(cols);
    free(counts);
    *prob = p / c->K;
    return 0;
}

/* ---- lexical metric ------------------------------------------------------------------------- */

static int word_byte(unsigned char c) { return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static unsigned char ascii_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

long hp_lexicon_count(const char *const *words, int n, const char *text, long *n_words) {
    const unsigned char *t = (const unsigned char *)text;
    size_t len = strlen(text);
    if (n_words) {
        long w = 0;
        for (size_t i = 0; i < len; i++) w += word_byte(t[i]) && (i == 0 || !word_byte(t[i - 1]));
        *n_words = w;
    }
    long hits = 0;
    for (int k = 0; k < n; k++) {
        const unsigned char *w = (const unsigned char *)words[k];
        size_t wl = strlen(words[k]);
        if (!wl || wl > len) continue;
        for (size_t i = 0; i + wl <= len; i++) {
            if (i > 0 && word_byte(t[i - 1]) && word_byte(w[0])) continue;
            size_t j = 0;
            while (j < wl && ascii_lower(t[i + j]) == ascii_lower(w[j])) j++;
            if (j < wl) continue;
            if (i + wl < len && word_byte(t[i + wl]) && word_byte(w[wl - 1])) continue;
            hits++;
        }
    }
    return hits;
}
