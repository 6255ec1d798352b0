/* tokenizer.c: the tokenizer core: string pool and hash maps, the builders both loaders use,
 * encoding (added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor) and decoding,
 * each step following Hugging Face `tokenizers` (its Rust sources are the specification; the
 * comments name the HF behaviour being reproduced where it is not obvious).
 * Loaders: tokenizer_json.c (tokenizer.json) and tokenizer_gguf.c (GGUF metadata). */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------------------------ */
/* growable arrays                                                                            */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return -1;
        nc *= 2;
    }
    size_t bytes;
    if (!hp_mul_ok(nc, elem, &bytes)) return -1;
    void *q = realloc(*p, bytes);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* string pool and maps                                                                       */

int tk_intern(hp_tokenizer *t, const char *s, size_t len, tk_sref *out) {
    if (len > UINT32_MAX || t->pool.n > UINT32_MAX - len - 1) return -1;
    if (grow((void **)&t->pool.p, &t->pool.cap, t->pool.n + len + 1, 1)) return -1;
    if (len) memcpy(t->pool.p + t->pool.n, s, len);
    t->pool.p[t->pool.n + len] = 0; /* so pooled strings can be handed out as C strings */
    out->off = (uint32_t)t->pool.n;
    out->len = (uint32_t)len;
    t->pool.n += len + 1;
    return 0;
}

static uint32_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

static int sm_rehash(tk_strmap *m, size_t ncap) {
    tk_sm_entry *ne = malloc(ncap * sizeof *ne);
    if (!ne) return -1;
    for (size_t i = 0; i < ncap; i++) ne[i].val = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].val < 0) continue;
        size_t j = m->e[i].hash & (ncap - 1);
        while (ne[j].val >= 0) j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

/* Maps the pooled string ref -> val, replacing an existing value. */
int tk_sm_put(const tk_pool *pool, tk_strmap *m, tk_sref ref, int32_t val) {
    if ((m->n + 1) * 2 > m->cap && sm_rehash(m, m->cap ? m->cap * 2 : 64)) return -1;
    uint32_t h = hash_bytes(pool->p + ref.off, ref.len);
    size_t j = h & (m->cap - 1);
    while (m->e[j].val >= 0) {
        if (m->e[j].hash == h && m->e[j].len == ref.len &&
            !memcmp(pool->p + m->e[j].off, pool->p + ref.off, ref.len)) {
            m->e[j].val = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j] = (tk_sm_entry){ref.off, ref.len, h, val};
    m->n++;
    return 0;
}

int32_t tk_sm_get(const tk_pool *pool, const tk_strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    uint32_t h = hash_bytes(s, len);
    size_t j = h & (m->cap - 1);
    while (m->e[j].val >= 0) {
        if (m->e[j].hash == h && m->e[j].len == len && !memcmp(pool->p + m->e[j].off, s, len))
            return m->e[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int pm_rehash(tk_pairmap *m, size_t ncap) {
    tk_pm_entry *ne = malloc(ncap * sizeof *ne);
    if (!ne) return -1;
    for (size_t i = 0; i < ncap; i++) ne[i].rank = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].rank < 0) continue;
        size_t j = mix64(m->e[i].key) & (ncap - 1);
        while (ne[j].rank >= 0) j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

/* A repeated pair keeps the later rank, as HF's collect() into a HashMap does. */
static int pm_put(tk_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    if ((m->n + 1) * 2 > m->cap && pm_rehash(m, m->cap ? m->cap * 2 : 1024)) return -1;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t j = mix64(key) & (m->cap - 1);
    while (m->e[j].rank >= 0) {
        if (m->e[j].key == key) {
            m->e[j].rank = rank;
            m->e[j].new_id = new_id;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j] = (tk_pm_entry){key, rank, new_id};
    m->n++;
    return 0;
}

static const tk_pm_entry *pm_get(const tk_pairmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t j = mix64(key) & (m->cap - 1);
    while (m->e[j].rank >= 0) {
        if (m->e[j].key == key) return &m->e[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* UTF-8 and character classes                                                                */

int tk_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    if (u[0] < 0x80 || n < 2) {
        *cp = u[0];
        return 1;
    }
    if (u[0] < 0xE0) {
        *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
        return 2;
    }
    if (u[0] < 0xF0 || n < 4) {
        if (n < 3) {
            *cp = u[0];
            return 1;
        }
        *cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
          ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    return 4;
}

int tk_utf8_put(char *out, uint32_t cp) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 with *bad = the length of its maximal
 * invalid prefix (>= 1): the "maximal subpart" rule of Unicode, which Rust's from_utf8_lossy
 * and Python's decode(errors="replace") both follow, one U+FFFD per maximal subpart. */
static size_t utf8_valid_len(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t b = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        uint8_t c = k < n ? s[k] : 0;
        uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (k >= n || c < l || c > h) {
            *bad = k;
            return 0;
        }
    }
    return need + 1;
}

/* Appends s[0..n) to the buffer with invalid sequences replaced by U+FFFD. */
static int utf8_lossy_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    size_t need;
    if (!hp_mul_ok(n, 3, &need) || !hp_add_ok(need, *len + 1, &need)) return -1;
    if (grow((void **)buf, cap, need, 1)) return -1;
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        size_t bad = 0, k = utf8_valid_len(u + i, n - i, &bad);
        if (k) {
            memcpy(*buf + *len, s + i, k);
            *len += k;
            i += k;
        } else {
            memcpy(*buf + *len, "\xEF\xBF\xBD", 3);
            *len += 3;
            i += bad;
        }
    }
    (*buf)[*len] = 0;
    return 0;
}

size_t tk_utf8_valid_prefix(const char *s, size_t n) {
    size_t i = 0, bad;
    while (i < n) {
        size_t k = utf8_valid_len((const uint8_t *)s + i, n - i, &bad);
        if (!k) break;
        i += k;
    }
    return i;
}

int tk_utf8_valid(const char *s, size_t n) { return tk_utf8_valid_prefix(s, n) == n; }

/* Unicode White_Space: Rust's char::is_whitespace and its regex \s. */
static int is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* The code point that ends at s[end) (valid UTF-8). */
static size_t utf8_prev(const char *s, size_t end) {
    size_t i = end - 1;
    while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80) i--;
    return i;
}

/* ------------------------------------------------------------------------------------------ */
/* GPT-2 byte <-> unicode alphabet: printable bytes stand for themselves, the other 68 take
 * the code points from U+0100 upwards in byte order. */

static int bl_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t tk_byte_to_cp(uint8_t b) {
    if (bl_printable(b)) return b;
    int k = 0;
    for (int i = 0; i < b; i++) k += !bl_printable(i);
    return 256u + (uint32_t)k;
}

/* Fills the tokenizer's byte-level tables: byte -> UTF-8 of its character, character -> byte. */
static void bl_tables(hp_tokenizer *t) {
    for (int i = 0; i < 256 + 68; i++) t->bl_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        char tmp[4];
        uint32_t cp = tk_byte_to_cp((uint8_t)b);
        int k = tk_utf8_put(tmp, cp);
        memcpy(t->bl_chr[b], tmp, (size_t)k);
        t->bl_len[b] = (uint8_t)k;
        t->bl_byte[cp] = (int16_t)b;
    }
}

int tk_cp_to_byte(const hp_tokenizer *t, uint32_t cp) { return cp < 256 + 68 ? t->bl_byte[cp] : -1; }

const char tk_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char tk_llama3_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ------------------------------------------------------------------------------------------ */
/* builders                                                                                   */

pcre2_code *tk_compile(const hp_tokenizer *t, const char *pat, size_t len, int literal,
                       const char *where, hp_err *e) {
    int err;
    PCRE2_SIZE off;
    uint32_t opt = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP); /* LITERAL refuses UCP */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opt, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        hp_errf(e, "%s: %s: regex does not compile at offset %zu: %s", t->path, where,
                (size_t)off, (char *)msg);
    }
    return re;
}

hp_tokenizer *tk_new(const char *path, hp_err *e) {
    hp_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path ? path : "(tokenizer)"))) {
        free(t);
        hp_errf(e, "%s: out of memory", path ? path : "(tokenizer)");
        return NULL;
    }
    t->unk_id = -1;
    t->bos = t->eos = -1;
    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    bl_tables(t);
    /* Rust regex's Unicode \w: alphabetic, marks, decimal digits, connectors, joiners */
    t->re_word = tk_compile(t, "[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]", PCRE2_ZERO_TERMINATED, 0,
                            "internal", e);
    if (!t->re_word) {
        hp_tok_free(t);
        return NULL;
    }
    return t;
}

/* Grows the id space to cover id (capacity doubles, so loading n ids costs O(n)). */
static int ensure_ids(hp_tokenizer *t, int32_t id) {
    if (id < t->n_ids) return 0;
    if (id >= t->cap_ids) {
        size_t nc = t->cap_ids < 1024 ? 1024 : (size_t)t->cap_ids;
        while (nc <= (size_t)id) nc *= 2;
        tk_sref *p = realloc(t->piece, nc * sizeof *p);
        if (!p) return -1;
        t->piece = p;
        for (size_t i = (size_t)t->cap_ids; i < nc; i++) t->piece[i] = (tk_sref){0, UINT32_MAX};
        t->cap_ids = (int32_t)nc;
    }
    t->n_ids = id + 1;
    return 0;
}

int tk_set_piece(hp_tokenizer *t, int32_t id, const char *s, size_t len, hp_err *e) {
    tk_sref r;
    if (id < 0 || id > TK_MAX_ID) return hp_errf(e, "%s: token id %d out of range", t->path, (int)id);
    if (ensure_ids(t, id) || tk_intern(t, s, len, &r) || tk_sm_put(&t->pool, &t->vocab, r, id))
        return hp_errf(e, "%s: out of memory", t->path);
    t->piece[id] = r;
    return 0;
}

int32_t tk_vocab_get(const hp_tokenizer *t, const char *s, size_t len) {
    return tk_sm_get(&t->pool, &t->vocab, s, len);
}

int tk_add_merge(hp_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                 const char *where, hp_err *e) {
    int32_t ia = tk_vocab_get(t, a, alen), ib = tk_vocab_get(t, b, blen);
    if (ia < 0) return hp_errf(e, "%s: %s: merge part \"%.*s\" is not in the vocabulary", t->path, where, (int)(alen > 64 ? 64 : alen), a);
    if (ib < 0) return hp_errf(e, "%s: %s: merge part \"%.*s\" is not in the vocabulary", t->path, where, (int)(blen > 64 ? 64 : blen), b);
    /* HF strips the continuing_subword_prefix from the right part before joining */
    size_t skip = t->cont_prefix_len;
    if (skip > blen || (skip && memcmp(b, t->cont_prefix, skip))) skip = 0;
    size_t n = alen + blen - skip;
    char stack[256], *m = n <= sizeof stack ? stack : malloc(n ? n : 1);
    if (!m) return hp_errf(e, "%s: out of memory", t->path);
    memcpy(m, a, alen);
    memcpy(m + alen, b + skip, blen - skip);
    int32_t nid = tk_vocab_get(t, m, n);
    if (nid < 0) {
        hp_errf(e, "%s: %s: merged token \"%.*s\" is not in the vocabulary", t->path, where, (int)(n > 64 ? 64 : n), m);
        if (m != stack) free(m);
        return -1;
    }
    if (m != stack) free(m);
    if (pm_put(&t->merges, ia, ib, t->n_merges, nid)) return hp_errf(e, "%s: out of memory", t->path);
    t->n_merges++;
    return 0;
}

int tk_add_added(hp_tokenizer *t, const char *s, size_t len, int32_t id, int special, int lstrip,
                 int rstrip, int single_word, int normalized, hp_err *e) {
    tk_sref r;
    if (id < 0 || id > TK_MAX_ID) return hp_errf(e, "%s: added token id %d out of range", t->path, (int)id);
    if (ensure_ids(t, id) || tk_intern(t, s, len, &r)) return hp_errf(e, "%s: out of memory", t->path);
    int32_t at = tk_sm_get(&t->pool, &t->added_map, s, len);
    if (at < 0) {
        size_t cap = (size_t)t->cap_added;
        if (grow((void **)&t->added, &cap, (size_t)t->n_added + 1, sizeof *t->added))
            return hp_errf(e, "%s: out of memory", t->path);
        t->cap_added = (int)cap;
        at = t->n_added++;
        if (tk_sm_put(&t->pool, &t->added_map, r, at)) return hp_errf(e, "%s: out of memory", t->path);
    }
    t->added[at] = (tk_added){r, r, id, (uint8_t)!!special, (uint8_t)!!lstrip, (uint8_t)!!rstrip,
                              (uint8_t)!!single_word, (uint8_t)!!normalized};
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* encoding work state                                                                        */

typedef struct tk_piece {
    size_t off, len; /* in w->arena */
    int32_t id;      /* >= 0: an added token, final */
    uint8_t first;   /* starts at offset 0 of the original text (Metaspace prepend_scheme first) */
} tk_piece;

typedef struct tk_sym {
    int32_t c, prev, next;
    uint32_t len;
} tk_sym;
typedef struct tk_merge_item {
    int32_t rank, pos, new_id;
} tk_merge_item;

typedef struct tk_work {
    char *arena;
    size_t an, acap;
    tk_piece *pc, *pc2;
    size_t npc, cpc, npc2, cpc2;
    int32_t *ids;
    size_t nids, cids;
    tk_sym *sym;
    size_t csym;
    tk_merge_item *heap;
    size_t cheap;
    size_t *ev; /* split events: triples (start, end, is_match) */
    size_t nev, cev;
    pcre2_match_data *md;
} tk_work;

/* The arena is allocated up front so that arena + offset is never arithmetic on NULL. */
static int work_init(tk_work *w) {
    memset(w, 0, sizeof *w);
    w->md = pcre2_match_data_create(16, NULL);
    w->acap = 256;
    w->arena = malloc(w->acap);
    return w->md && w->arena ? 0 : -1;
}

static void work_free(tk_work *w) {
    free(w->arena);
    free(w->pc);
    free(w->pc2);
    free(w->ids);
    free(w->sym);
    free(w->heap);
    free(w->ev);
    if (w->md) pcre2_match_data_free(w->md);
}

/* Appends bytes to the arena; returns their offset or SIZE_MAX. s may point into the arena
 * itself (copying a piece), so it is re-based if growing moves the arena. */
static size_t arena_put(tk_work *w, const char *s, size_t n) {
    size_t need, src = SIZE_MAX;
    uintptr_t us = (uintptr_t)s, ua = (uintptr_t)w->arena;
    if (w->arena && us >= ua && us < ua + w->an) src = (size_t)(us - ua);
    if (!hp_add_ok(w->an, n, &need) || grow((void **)&w->arena, &w->acap, need + 1, 1)) return SIZE_MAX;
    if (src != SIZE_MAX) s = w->arena + src;
    if (n) memmove(w->arena + w->an, s, n);
    size_t off = w->an;
    w->an += n;
    return off;
}

/* Reserves n bytes (to be filled by the caller) and returns their offset or SIZE_MAX. */
static size_t arena_reserve(tk_work *w, size_t n) {
    size_t need;
    if (!hp_add_ok(w->an, n, &need) || grow((void **)&w->arena, &w->acap, need + 1, 1)) return SIZE_MAX;
    size_t off = w->an;
    w->an += n;
    return off;
}

static int push_piece(tk_piece **pc, size_t *n, size_t *cap, tk_piece p) {
    if (p.id < 0 && p.len == 0) return 0; /* HF drops empty splits */
    if (grow((void **)pc, cap, *n + 1, sizeof **pc)) return -1;
    (*pc)[(*n)++] = p;
    return 0;
}

static int push_id(tk_work *w, int32_t id) {
    if (grow((void **)&w->ids, &w->cids, w->nids + 1, sizeof *w->ids)) return -1;
    w->ids[w->nids++] = id;
    return 0;
}

/* Swaps the output list (pc2) in as the current list (pc). */
static void swap_lists(tk_work *w) {
    tk_piece *p = w->pc;
    size_t c = w->cpc;
    w->pc = w->pc2;
    w->cpc = w->cpc2;
    w->npc = w->npc2;
    w->pc2 = p;
    w->cpc2 = c;
    w->npc2 = 0;
}

static int is_word_at(const hp_tokenizer *t, tk_work *w, const char *s, size_t n) {
    return pcre2_match(t->re_word, (PCRE2_SPTR)s, n, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, w->md,
                       NULL) >= 0;
}

/* ------------------------------------------------------------------------------------------ */
/* added tokens: leftmost-longest matching, then HF's single_word / lstrip / rstrip handling  */

static int trie_add(tk_trie *tr, const char *s, size_t n, int32_t added) {
    if (!n) return 0; /* an empty pattern would match everywhere; HF never matches it usefully */
    if (tr->n == 0) {
        size_t cap = (size_t)tr->cap;
        if (grow((void **)&tr->node, &cap, 1, sizeof *tr->node)) return -1;
        tr->cap = (int32_t)cap;
        tr->node[0] = (tk_trie_node){-1, -1, -1, 0};
        tr->n = 1;
        for (int i = 0; i < 256; i++) tr->root[i] = -1;
    }
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t ch = cur == 0 ? tr->root[b] : tr->node[cur].child;
        if (cur != 0)
            while (ch >= 0 && tr->node[ch].byte != b) ch = tr->node[ch].sibling;
        if (ch < 0) {
            size_t cap = (size_t)tr->cap;
            if (tr->n == INT32_MAX || grow((void **)&tr->node, &cap, (size_t)tr->n + 1, sizeof *tr->node))
                return -1;
            tr->cap = (int32_t)cap;
            ch = tr->n++;
            tr->node[ch] = (tk_trie_node){-1, -1, -1, b};
            if (cur == 0) {
                tr->root[b] = ch;
            } else {
                tr->node[ch].sibling = tr->node[cur].child;
                tr->node[cur].child = ch;
            }
        }
        cur = ch;
    }
    if (tr->node[cur].added < 0) tr->node[cur].added = added; /* the first registered wins */
    return 0;
}

/* Longest pattern starting at s[0..n): its added index (or -1) and length. */
static int32_t trie_longest(const tk_trie *tr, const char *s, size_t n, size_t *mlen) {
    if (!tr->n || !n) return -1;
    int32_t best = -1, cur = tr->root[(uint8_t)s[0]];
    size_t i = 1;
    while (cur >= 0) {
        if (tr->node[cur].added >= 0) {
            best = tr->node[cur].added;
            *mlen = i;
        }
        if (i >= n) break;
        uint8_t b = (uint8_t)s[i++];
        int32_t ch = tr->node[cur].child;
        while (ch >= 0 && tr->node[ch].byte != b) ch = tr->node[ch].sibling;
        cur = ch;
    }
    return best;
}

/* HF AddedVocabulary::find_matches on piece p (text in the arena), appending to pc2. */
static int split_added(const hp_tokenizer *t, tk_work *w, const tk_trie *tr, tk_piece p) {
    if (!tr->n) return push_piece(&w->pc2, &w->npc2, &w->cpc2, p);
    size_t start_offset = 0, pos = 0, n = p.len;
    while (pos < n) {
        const char *s = w->arena + p.off; /* re-read: the arena does not grow in this loop */
        size_t mlen = 0;
        int32_t a = trie_longest(tr, s + pos, n - pos, &mlen);
        if (a < 0) {
            pos++;
            continue;
        }
        size_t start = pos, stop = pos + mlen;
        pos = stop; /* the scan continues after the match, whatever happens to it below */
        const tk_added *ad = &t->added[a];
        if (ad->single_word) {
            int start_space = start == 0, stop_space = stop == n;
            if (!start_space) {
                size_t q = utf8_prev(s, start);
                start_space = !is_word_at(t, w, s + q, start - q);
            }
            if (!stop_space) {
                uint32_t cp;
                int k = tk_utf8_next(s + stop, n - stop, &cp);
                stop_space = !is_word_at(t, w, s + stop, (size_t)k);
            }
            if (!start_space || !stop_space) continue;
        }
        if (ad->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t q = utf8_prev(s, ns);
                uint32_t cp;
                tk_utf8_next(s + q, ns - q, &cp);
                if (!is_ws(cp)) break;
                ns = q;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (ad->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int k = tk_utf8_next(s + stop, n - stop, &cp);
                if (!is_ws(cp)) break;
                stop += (size_t)k;
            }
        }
        if (start > start_offset &&
            push_piece(&w->pc2, &w->npc2, &w->cpc2,
                       (tk_piece){p.off + start_offset, start - start_offset, -1,
                                  (uint8_t)(p.first && start_offset == 0)}))
            return -1;
        if (push_piece(&w->pc2, &w->npc2, &w->cpc2, (tk_piece){p.off + start, stop - start, ad->id, 0}))
            return -1;
        start_offset = stop;
    }
    if (start_offset < n &&
        push_piece(&w->pc2, &w->npc2, &w->cpc2,
                   (tk_piece){p.off + start_offset, n - start_offset, -1,
                              (uint8_t)(p.first && start_offset == 0)}))
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* regex matching with onig's find_iter semantics (tokenizers runs onig): an empty match right
 * where the previous match ended is skipped by advancing one character. Fills w->ev with
 * HF's Pattern::find_matches events covering the whole string: (start, end, is_match). */

static int ev_push(tk_work *w, size_t a, size_t b, size_t m) {
    if (grow((void **)&w->ev, &w->cev, w->nev + 3, sizeof *w->ev)) return -1;
    w->ev[w->nev++] = a;
    w->ev[w->nev++] = b;
    w->ev[w->nev++] = m;
    return 0;
}

static int find_events(const hp_tokenizer *t, tk_work *w, const pcre2_code *re, size_t off,
                       size_t n, hp_err *e) {
    w->nev = 0;
    if (n == 0) return ev_push(w, 0, 0, 0);
    size_t last_end = 0, prev = 0;
    int have_last = 0;
    size_t last_match_end = 0;
    while (last_end <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)(w->arena + off), n, last_end, PCRE2_NO_UTF_CHECK, w->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hp_errf(e, "%s: regex match failed: %s", t->path, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t ms = ov[0], me = ov[1];
        if (me < ms) me = ms; /* \K tricks; never in tokenizer patterns */
        if (me == ms && have_last && last_match_end == me) {
            if (last_end >= n) break;
            uint32_t cp;
            last_end += (size_t)tk_utf8_next(w->arena + off + last_end, n - last_end, &cp);
            continue;
        }
        last_end = me;
        last_match_end = me;
        have_last = 1;
        if (prev != ms && ev_push(w, prev, ms, 0)) return hp_errf(e, "%s: out of memory", t->path);
        if (ev_push(w, ms, me, 1)) return hp_errf(e, "%s: out of memory", t->path);
        prev = me;
    }
    if (prev != n && ev_push(w, prev, n, 0)) return hp_errf(e, "%s: out of memory", t->path);
    return 0;
}

/* HF NormalizedString::split: folds the events by behaviour and appends the resulting pieces
 * (sub-strings of p) to pc2. */
static int split_by_events(tk_work *w, tk_piece p, int behavior, int invert) {
    size_t ne = w->nev / 3;
    size_t *ev = w->ev;
    if (invert)
        for (size_t i = 0; i < ne; i++) ev[3 * i + 2] = !ev[3 * i + 2];
    /* fold in place into (start, end, remove) triples; k = number of output triples */
    size_t k = 0;
    int prev_match = 0;
    if (behavior == TK_MERGED_NEXT) {
        /* HF folds from the right: a match joins the piece after it */
        size_t out = ne; /* write triples from the back */
        for (size_t ii = ne; ii-- > 0;) {
            size_t a = ev[3 * ii], b = ev[3 * ii + 1];
            int m = (int)ev[3 * ii + 2];
            if (m && !prev_match && out < ne) {
                ev[3 * out] = a;
            } else {
                out--;
                ev[3 * out] = a;
                ev[3 * out + 1] = b;
                ev[3 * out + 2] = 0;
            }
            prev_match = m;
        }
        for (size_t i = out; i < ne; i++) {
            if (push_piece(&w->pc2, &w->npc2, &w->cpc2,
                           (tk_piece){p.off + ev[3 * i], ev[3 * i + 1] - ev[3 * i], -1,
                                      (uint8_t)(p.first && ev[3 * i] == 0)}))
                return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < ne; i++) {
        size_t a = ev[3 * i], b = ev[3 * i + 1];
        int m = (int)ev[3 * i + 2];
        switch (behavior) {
        case TK_ISOLATED:
            ev[3 * k] = a, ev[3 * k + 1] = b, ev[3 * k + 2] = 0, k++;
            break;
        case TK_REMOVED:
            ev[3 * k] = a, ev[3 * k + 1] = b, ev[3 * k + 2] = (size_t)m, k++;
            break;
        case TK_CONTIGUOUS:
            if (m == prev_match && k > 0) ev[3 * (k - 1) + 1] = b;
            else ev[3 * k] = a, ev[3 * k + 1] = b, ev[3 * k + 2] = 0, k++;
            prev_match = m;
            break;
        default: /* TK_MERGED_PREV */
            if (m && !prev_match && k > 0) ev[3 * (k - 1) + 1] = b;
            else ev[3 * k] = a, ev[3 * k + 1] = b, ev[3 * k + 2] = 0, k++;
            prev_match = m;
            break;
        }
    }
    for (size_t i = 0; i < k; i++) {
        if (ev[3 * i + 2]) continue;
        if (push_piece(&w->pc2, &w->npc2, &w->cpc2,
                       (tk_piece){p.off + ev[3 * i], ev[3 * i + 1] - ev[3 * i], -1,
                                  (uint8_t)(p.first && ev[3 * i] == 0)}))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* normalizers                                                                                */

/* Replaces every match of (literal a | regex re) in arena[off..off+n) by b; the result is
 * appended to the arena and returned as (off, len). */
static int replace_all(const hp_tokenizer *t, tk_work *w, const char *a, size_t alen,
                       const pcre2_code *re, const char *b, size_t blen, size_t *off, size_t *n,
                       hp_err *e) {
    size_t src = *off, len = *n;
    if (!re && alen == 0) return 0;
    size_t out = w->an;
    if (re) {
        if (find_events(t, w, re, src, len, e)) return -1;
        for (size_t i = 0; i < w->nev / 3; i++) {
            size_t s0 = w->ev[3 * i], s1 = w->ev[3 * i + 1];
            if (w->ev[3 * i + 2] ? arena_put(w, b, blen) == SIZE_MAX
                                 : arena_put(w, w->arena + src + s0, s1 - s0) == SIZE_MAX)
                return hp_errf(e, "%s: out of memory", t->path);
        }
    } else {
        size_t i = 0, last = 0;
        while (i + alen <= len) {
            if (!memcmp(w->arena + src + i, a, alen)) {
                if (arena_put(w, w->arena + src + last, i - last) == SIZE_MAX ||
                    arena_put(w, b, blen) == SIZE_MAX)
                    return hp_errf(e, "%s: out of memory", t->path);
                i += alen;
                last = i;
            } else {
                i++;
            }
        }
        if (arena_put(w, w->arena + src + last, len - last) == SIZE_MAX)
            return hp_errf(e, "%s: out of memory", t->path);
    }
    *off = out;
    *n = w->an - out;
    return 0;
}

static int normalize(const hp_tokenizer *t, tk_work *w, size_t *off, size_t *n, hp_err *e) {
    for (int k = 0; k < t->n_norm; k++) {
        const tk_norm *nm = &t->norm[k];
        if (nm->type == TK_NORM_PREPEND) {
            if (*n == 0) continue; /* HF prepends to non-empty strings only */
            size_t o = arena_put(w, nm->a, nm->alen);
            if (o == SIZE_MAX || arena_put(w, w->arena + *off, *n) == SIZE_MAX)
                return hp_errf(e, "%s: out of memory", t->path);
            *off = o;
            *n += nm->alen;
        } else if (nm->type == TK_NORM_REPLACE) {
            if (replace_all(t, w, nm->a, nm->alen, nm->re, nm->b, nm->blen, off, n, e)) return -1;
        } else { /* STRIP: Unicode whitespace at either end */
            const char *s = w->arena + *off;
            size_t a = 0, b = *n;
            if (nm->left)
                while (a < b) {
                    uint32_t cp;
                    int k2 = tk_utf8_next(s + a, b - a, &cp);
                    if (!is_ws(cp)) break;
                    a += (size_t)k2;
                }
            if (nm->right)
                while (b > a) {
                    size_t q = utf8_prev(s, b);
                    uint32_t cp;
                    tk_utf8_next(s + q, b - q, &cp);
                    if (!is_ws(cp)) break;
                    b = q;
                }
            *off += a;
            *n = b - a;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* pre-tokenizers                                                                             */

static int pre_metaspace(const hp_tokenizer *t, tk_work *w, const tk_pre *pr, tk_piece p, hp_err *e) {
    size_t off = p.off, n = p.len;
    if (replace_all(t, w, " ", 1, NULL, pr->repl, pr->repl_len, &off, &n, e)) return -1;
    int starts = n >= pr->repl_len && !memcmp(w->arena + off, pr->repl, pr->repl_len);
    if (!starts && (pr->prepend_scheme == TK_PREPEND_ALWAYS ||
                    (pr->prepend_scheme == TK_PREPEND_FIRST && p.first))) {
        size_t o = arena_put(w, pr->repl, pr->repl_len);
        if (o == SIZE_MAX || arena_put(w, w->arena + off, n) == SIZE_MAX)
            return hp_errf(e, "%s: out of memory", t->path);
        off = o;
        n += pr->repl_len;
    }
    tk_piece q = {off, n, -1, p.first};
    if (!pr->split) return push_piece(&w->pc2, &w->npc2, &w->cpc2, q) ? hp_errf(e, "%s: out of memory", t->path) : 0;
    if (find_events(t, w, pr->re, off, n, e)) return -1;
    return split_by_events(w, q, TK_MERGED_NEXT, 0) ? hp_errf(e, "%s: out of memory", t->path) : 0;
}

static int pre_bytelevel(const hp_tokenizer *t, tk_work *w, const tk_pre *pr, tk_piece p, hp_err *e) {
    if (pr->add_prefix_space && !(p.len && w->arena[p.off] == ' ')) {
        size_t o = arena_put(w, " ", 1);
        if (o == SIZE_MAX || arena_put(w, w->arena + p.off, p.len) == SIZE_MAX)
            return hp_errf(e, "%s: out of memory", t->path);
        p.off = o;
        p.len += 1;
    }
    size_t first = w->npc2;
    if (pr->re) {
        if (find_events(t, w, pr->re, p.off, p.len, e)) return -1;
        if (split_by_events(w, p, TK_ISOLATED, 0)) return hp_errf(e, "%s: out of memory", t->path);
    } else if (push_piece(&w->pc2, &w->npc2, &w->cpc2, p)) {
        return hp_errf(e, "%s: out of memory", t->path);
    }
    /* map every byte of the new pieces to its alphabet character */
    for (size_t i = first; i < w->npc2; i++) {
        tk_piece *q = &w->pc2[i];
        size_t o = arena_reserve(w, q->len * 2);
        if (o == SIZE_MAX) return hp_errf(e, "%s: out of memory", t->path);
        size_t m = 0;
        for (size_t j = 0; j < q->len; j++) {
            uint8_t b = (uint8_t)w->arena[q->off + j];
            memcpy(w->arena + o + m, t->bl_chr[b], t->bl_len[b]);
            m += t->bl_len[b];
        }
        w->an = o + m;
        q->off = o;
        q->len = m;
    }
    return 0;
}

static int pretokenize(const hp_tokenizer *t, tk_work *w, hp_err *e) {
    for (int k = 0; k < t->n_pre; k++) {
        const tk_pre *pr = &t->pre[k];
        w->npc2 = 0;
        for (size_t i = 0; i < w->npc; i++) {
            tk_piece p = w->pc[i];
            int rc = 0;
            if (p.id >= 0) {
                rc = push_piece(&w->pc2, &w->npc2, &w->cpc2, p) ? hp_errf(e, "%s: out of memory", t->path) : 0;
            } else if (pr->type == TK_PRE_METASPACE) {
                rc = pre_metaspace(t, w, pr, p, e);
            } else if (pr->type == TK_PRE_BYTELEVEL) {
                rc = pre_bytelevel(t, w, pr, p, e);
            } else if (!pr->re) { /* Split on an empty string: HF matches nothing */
                rc = push_piece(&w->pc2, &w->npc2, &w->cpc2, p) ? hp_errf(e, "%s: out of memory", t->path) : 0;
            } else { /* SPLIT, DIGITS */
                rc = find_events(t, w, pr->re, p.off, p.len, e);
                if (!rc && split_by_events(w, p, pr->behavior, pr->invert))
                    rc = hp_errf(e, "%s: out of memory", t->path);
            }
            if (rc) return -1;
        }
        swap_lists(w);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* BPE (HF models::bpe::BPE::merge_word and Word::merge_all)                                   */

static int heap_less(const tk_merge_item *a, const tk_merge_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(tk_work *w, size_t *n, tk_merge_item it) {
    if (grow((void **)&w->heap, &w->cheap, *n + 1, sizeof *w->heap)) return -1;
    size_t i = (*n)++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (!heap_less(&it, &w->heap[par])) break;
        w->heap[i] = w->heap[par];
        i = par;
    }
    w->heap[i] = it;
    return 0;
}

static tk_merge_item heap_pop(tk_work *w, size_t *n) {
    tk_merge_item top = w->heap[0], last = w->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!heap_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (*n) w->heap[i] = last;
    return top;
}

static int sym_add(tk_work *w, size_t *ns, int32_t c, uint32_t len) {
    if (*ns >= INT32_MAX || grow((void **)&w->sym, &w->csym, *ns + 1, sizeof *w->sym)) return -1;
    int32_t i = (int32_t)*ns;
    w->sym[i] = (tk_sym){c, i - 1, -1, len};
    if (i > 0) w->sym[i - 1].next = i;
    (*ns)++;
    return 0;
}

static int bpe_word(const hp_tokenizer *t, tk_work *w, const char *s, size_t n, hp_err *e) {
    if (n == 0) return 0;
    if (t->ignore_merges) {
        int32_t id = tk_vocab_get(t, s, n);
        if (id >= 0) return push_id(w, id) ? hp_errf(e, "%s: out of memory", t->path) : 0;
    }
    size_t ns = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    char stack[128];
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = (size_t)tk_utf8_next(s + i, n - i, &cp);
        int is_first = i == 0, is_last = i + k == n;
        const char *key = s + i;
        size_t klen = k;
        char *heap_key = NULL;
        if ((!is_first && t->cont_prefix) || (is_last && t->eow_suffix)) {
            size_t pl = !is_first && t->cont_prefix ? t->cont_prefix_len : 0;
            size_t sl = is_last && t->eow_suffix ? t->eow_suffix_len : 0;
            klen = pl + k + sl;
            char *buf = klen <= sizeof stack ? stack : (heap_key = malloc(klen));
            if (!buf) return hp_errf(e, "%s: out of memory", t->path);
            memcpy(buf, t->cont_prefix, pl);
            memcpy(buf + pl, s + i, k);
            if (sl) memcpy(buf + pl + k, t->eow_suffix, sl);
            key = buf;
        }
        int32_t id = tk_vocab_get(t, key, klen);
        int fail = 0;
        if (id >= 0) {
            if (unk >= 0) {
                fail |= sym_add(w, &ns, unk, unk_len);
                unk = -1;
            }
            fail |= sym_add(w, &ns, id, (uint32_t)k);
        } else {
            int done = 0;
            if (t->byte_fallback) {
                int all = 1;
                for (size_t j = 0; j < klen; j++) all &= t->byte_tok[(uint8_t)key[j]] >= 0;
                if (all) {
                    /* as HF: byte tokens do not flush a pending unk first */
                    for (size_t j = 0; j < klen; j++) fail |= sym_add(w, &ns, t->byte_tok[(uint8_t)key[j]], 1);
                    done = 1;
                }
            }
            if (!done && t->unk_id >= 0) {
                if (unk >= 0 && t->fuse_unk) {
                    unk_len += (uint32_t)k;
                } else {
                    if (unk >= 0) fail |= sym_add(w, &ns, unk, unk_len);
                    unk = t->unk_id;
                    unk_len = (uint32_t)k;
                }
            }
            /* no byte token and no unk: HF drops the character */
        }
        free(heap_key);
        if (fail) return hp_errf(e, "%s: out of memory", t->path);
        i += k;
    }
    if (unk >= 0 && sym_add(w, &ns, unk, unk_len)) return hp_errf(e, "%s: out of memory", t->path);

    size_t nh = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        const tk_pm_entry *m = pm_get(&t->merges, w->sym[i].c, w->sym[i + 1].c);
        if (m && heap_push(w, &nh, (tk_merge_item){m->rank, (int32_t)i, m->new_id}))
            return hp_errf(e, "%s: out of memory", t->path);
    }
    while (nh) {
        tk_merge_item top = heap_pop(w, &nh);
        tk_sym *cur = &w->sym[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t nxt = cur->next;
        const tk_pm_entry *m = pm_get(&t->merges, cur->c, w->sym[nxt].c);
        if (!m || m->new_id != top.new_id) continue; /* stale entry */
        tk_sym right = w->sym[nxt];
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        w->sym[nxt].len = 0;
        if (right.next >= 0) w->sym[right.next].prev = top.pos;
        if (cur->prev >= 0) {
            const tk_pm_entry *pm = pm_get(&t->merges, w->sym[cur->prev].c, cur->c);
            if (pm && heap_push(w, &nh, (tk_merge_item){pm->rank, cur->prev, pm->new_id}))
                return hp_errf(e, "%s: out of memory", t->path);
            cur = &w->sym[top.pos]; /* the heap grew, not sym: cur stays valid, reloaded anyway */
        }
        if (cur->next >= 0) {
            const tk_pm_entry *nm = pm_get(&t->merges, cur->c, w->sym[cur->next].c);
            if (nm && heap_push(w, &nh, (tk_merge_item){nm->rank, top.pos, nm->new_id}))
                return hp_errf(e, "%s: out of memory", t->path);
        }
    }
    for (size_t i = 0; i < ns; i++)
        if (w->sym[i].len && push_id(w, w->sym[i].c)) return hp_errf(e, "%s: out of memory", t->path);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* encode                                                                                     */

static int encode_text(const hp_tokenizer *t, tk_work *w, const char *text, size_t len, hp_err *e) {
    /* HF takes valid UTF-8 only; invalid sequences become U+FFFD (see utf8_valid_len) */
    if (utf8_lossy_append(&w->arena, &w->an, &w->acap, text, len))
        return hp_errf(e, "%s: out of memory", t->path);
    size_t tlen = w->an;
    w->npc2 = 0;
    /* 1. non-normalized added tokens, in the raw text */
    if (split_added(t, w, &t->trie_raw, (tk_piece){0, tlen, -1, 1})) return hp_errf(e, "%s: out of memory", t->path);
    swap_lists(w);
    /* 2. normalize the other pieces, then split out normalized added tokens */
    w->npc2 = 0;
    for (size_t i = 0; i < w->npc; i++) {
        tk_piece p = w->pc[i];
        if (p.id >= 0) {
            if (push_piece(&w->pc2, &w->npc2, &w->cpc2, p)) return hp_errf(e, "%s: out of memory", t->path);
            continue;
        }
        if (normalize(t, w, &p.off, &p.len, e)) return -1;
        if (split_added(t, w, &t->trie_norm, p)) return hp_errf(e, "%s: out of memory", t->path);
    }
    swap_lists(w);
    /* 3. pre-tokenize, 4. BPE each word */
    if (pretokenize(t, w, e)) return -1;
    for (size_t i = 0; i < w->npc; i++) {
        tk_piece p = w->pc[i];
        if (p.id >= 0) {
            if (push_id(w, p.id)) return hp_errf(e, "%s: out of memory", t->path);
        } else if (bpe_word(t, w, w->arena + p.off, p.len, e)) {
            return -1;
        }
    }
    return 0;
}

int hp_tok_encode(const hp_tokenizer *t, const char *text, size_t len, int add_special,
                  int32_t **ids, int *n, hp_err *e) {
    *ids = NULL;
    *n = 0;
    if (!t) return hp_errf(e, "hp_tok_encode: no tokenizer");
    if (!text && len) return hp_errf(e, "%s: hp_tok_encode: NULL text", t->path);
    tk_work w;
    int rc = work_init(&w) ? hp_errf(e, "%s: out of memory", t->path) : 0;
    if (!rc && add_special)
        for (int i = 0; i < t->n_prefix && !rc; i++) rc = push_id(&w, t->prefix[i]) ? hp_errf(e, "%s: out of memory", t->path) : 0;
    if (!rc) rc = encode_text(t, &w, text ? text : "", len, e);
    if (!rc && add_special)
        for (int i = 0; i < t->n_suffix && !rc; i++) rc = push_id(&w, t->suffix[i]) ? hp_errf(e, "%s: out of memory", t->path) : 0;
    if (!rc && w.nids > INT32_MAX) rc = hp_errf(e, "%s: text too long", t->path);
    if (!rc) {
        *ids = w.ids;
        *n = (int)w.nids;
        if (!*ids && (*ids = malloc(sizeof **ids)) == NULL) rc = hp_errf(e, "%s: out of memory", t->path);
        w.ids = NULL;
    }
    work_free(&w);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* decode (HF Tokenizer::decode, then the decoder chain)                                      */

typedef struct tk_tokv {
    size_t *off, *len; /* into the work arena */
    size_t n, cap;
} tk_tokv;

static int tokv_push(tk_tokv *v, size_t off, size_t len) {
    size_t c = v->cap;
    if (grow((void **)&v->off, &c, v->n + 1, sizeof *v->off)) return -1;
    c = v->cap;
    if (grow((void **)&v->len, &c, v->n + 1, sizeof *v->len)) return -1;
    v->cap = c;
    v->off[v->n] = off;
    v->len[v->n++] = len;
    return 0;
}

/* One decoder step over the token list in *v, producing a new list in *o. */
static int dec_step(const hp_tokenizer *t, tk_work *w, const tk_dec *d, tk_tokv *v, tk_tokv *o) {
    o->n = 0;
    hp_err e;
    if (d->type == TK_DEC_FUSE) {
        size_t start = w->an;
        for (size_t i = 0; i < v->n; i++)
            if (arena_put(w, w->arena + v->off[i], v->len[i]) == SIZE_MAX) return -1;
        return tokv_push(o, start, w->an - start);
    }
    if (d->type == TK_DEC_BYTELEVEL) {
        /* each token back to bytes (or its raw UTF-8 if any char is outside the alphabet), then
         * one lossy UTF-8 conversion over the whole run */
        char *bytes = NULL;
        size_t nb = 0, cb = 0;
        for (size_t i = 0; i < v->n; i++) {
            const char *s = w->arena + v->off[i];
            size_t n = v->len[i], mark = nb, j = 0;
            if (grow((void **)&bytes, &cb, nb + n + 1, 1)) {
                free(bytes);
                return -1;
            }
            int ok = 1;
            while (j < n) {
                uint32_t cp;
                j += (size_t)tk_utf8_next(s + j, n - j, &cp);
                int b = tk_cp_to_byte(t, cp);
                if (b < 0) {
                    ok = 0;
                    break;
                }
                bytes[nb++] = (char)b;
            }
            if (!ok) {
                nb = mark;
                memcpy(bytes + nb, s, n);
                nb += n;
            }
        }
        char *out = NULL;
        size_t no = 0, co = 0;
        int rc = utf8_lossy_append(&out, &no, &co, bytes ? bytes : "", nb);
        free(bytes);
        size_t off = rc ? SIZE_MAX : arena_put(w, out ? out : "", no);
        free(out);
        if (off == SIZE_MAX) return -1;
        return tokv_push(o, off, no);
    }
    if (d->type == TK_DEC_BYTEFALLBACK) {
        size_t run = 0; /* pending byte tokens, their bytes collected in tmp */
        char *tmp = NULL;
        size_t ntmp = 0, ctmp = 0;
        for (size_t i = 0; i <= v->n; i++) {
            int byte = -1;
            if (i < v->n && v->len[i] == 6) {
                const char *s = w->arena + v->off[i];
                /* Rust's u8::from_str_radix(s[3..5], 16): two hex digits, or '+' and one */
                if (!memcmp(s, "<0x", 3) && s[5] == '>') {
                    int h1 = s[3], h2 = s[4], v1, v2;
                    v2 = (h2 >= '0' && h2 <= '9') ? h2 - '0' : (h2 >= 'a' && h2 <= 'f') ? h2 - 'a' + 10 : (h2 >= 'A' && h2 <= 'F') ? h2 - 'A' + 10 : -1;
                    v1 = (h1 >= '0' && h1 <= '9') ? h1 - '0' : (h1 >= 'a' && h1 <= 'f') ? h1 - 'a' + 10 : (h1 >= 'A' && h1 <= 'F') ? h1 - 'A' + 10 : -1;
                    if (v2 >= 0 && v1 >= 0) byte = v1 * 16 + v2;
                    else if (v2 >= 0 && h1 == '+') byte = v2;
                }
            }
            if (byte >= 0) {
                if (grow((void **)&tmp, &ctmp, ntmp + 1, 1)) {
                    free(tmp);
                    return -1;
                }
                tmp[ntmp++] = (char)byte;
                run++;
                continue;
            }
            if (run) {
                if (tk_utf8_valid(tmp, ntmp)) {
                    size_t off = arena_put(w, tmp, ntmp);
                    if (off == SIZE_MAX || tokv_push(o, off, ntmp)) {
                        free(tmp);
                        return -1;
                    }
                } else {
                    for (size_t k = 0; k < run; k++) {
                        size_t off = arena_put(w, "\xEF\xBF\xBD", 3);
                        if (off == SIZE_MAX || tokv_push(o, off, 3)) {
                            free(tmp);
                            return -1;
                        }
                    }
                }
                run = ntmp = 0;
            }
            if (i < v->n && tokv_push(o, v->off[i], v->len[i])) {
                free(tmp);
                return -1;
            }
        }
        free(tmp);
        return 0;
    }
    for (size_t i = 0; i < v->n; i++) {
        size_t off = v->off[i], n = v->len[i];
        if (d->type == TK_DEC_REPLACE) {
            if (replace_all(t, w, d->a, d->alen, d->re, d->b, d->blen, &off, &n, &e)) return -1;
        } else if (d->type == TK_DEC_STRIP) {
            /* HF Strip: up to `start` leading and `stop` trailing copies of one character */
            size_t a = 0, b = n;
            for (int k = 0; k < d->start && a < b; k++) {
                uint32_t cp;
                int l = tk_utf8_next(w->arena + off + a, b - a, &cp);
                if (cp != d->strip_cp) break;
                a += (size_t)l;
            }
            for (int k = 0; k < d->stop && b > a; k++) {
                size_t q = utf8_prev(w->arena + off, b);
                uint32_t cp;
                tk_utf8_next(w->arena + off + q, b - q, &cp);
                if (cp != d->strip_cp) break;
                b = q;
            }
            off += a;
            n = b - a;
        } else { /* METASPACE: the replacement becomes a space, and vanishes in the first token */
            size_t start = w->an;
            for (size_t j = 0; j < n;) {
                uint32_t cp;
                size_t l = (size_t)tk_utf8_next(w->arena + off + j, n - j, &cp);
                if (cp == d->repl_cp) {
                    if (!(i == 0 && d->prepend) && arena_put(w, " ", 1) == SIZE_MAX) return -1;
                } else if (arena_put(w, w->arena + off + j, l) == SIZE_MAX) {
                    return -1;
                }
                j += l;
            }
            off = start;
            n = w->an - start;
        }
        if (tokv_push(o, off, n)) return -1;
    }
    return 0;
}

/* The string decode() sees for an id (HF: added vocabulary first, then the model), or NULL.
 * For a normalized added token HF returns its normalized form ("<sep>" -> "▁<sep>"), which
 * its decoder then turns into " <sep>". */
static const char *id_str(const hp_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids) return NULL;
    if (t->added_of_id && t->added_of_id[id] >= 0) {
        const tk_added *a = &t->added[t->added_of_id[id]];
        *len = a->pattern.len;
        return t->pool.p + a->pattern.off;
    }
    if (t->piece[id].len == UINT32_MAX) return NULL;
    *len = t->piece[id].len;
    return t->pool.p + t->piece[id].off;
}

char *hp_tok_decode(const hp_tokenizer *t, const int32_t *ids, int n, int skip_special) {
    if (!t || n < 0 || (n > 0 && !ids)) return NULL;
    tk_work w;
    tk_tokv a = {0}, b = {0};
    char *res = NULL;
    if (work_init(&w)) goto done;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *s = id_str(t, ids[i], &len);
        if (!s || (skip_special && t->special[ids[i]])) continue; /* HF drops unknown ids */
        size_t off = arena_put(&w, s, len);
        if (off == SIZE_MAX || tokv_push(&a, off, len)) goto done;
    }
    if (t->has_decoder) {
        for (int k = 0; k < t->n_dec; k++) {
            if (dec_step(t, &w, &t->dec[k], &a, &b)) goto done;
            tk_tokv tmp = a;
            a = b;
            b = tmp;
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < a.n; i++) total += a.len[i] + (!t->has_decoder && i ? 1 : 0);
    res = malloc(total + 1);
    if (!res) goto done;
    size_t m = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (!t->has_decoder && i) res[m++] = ' ';
        memcpy(res + m, w.arena + a.off[i], a.len[i]);
        m += a.len[i];
    }
    res[m] = 0;
done:
    free(a.off);
    free(a.len);
    free(b.off);
    free(b.len);
    work_free(&w);
    return res;
}

/* ------------------------------------------------------------------------------------------ */
/* finishing and accessors                                                                    */

int tk_finish(hp_tokenizer *t, hp_err *e) {
    if (t->n_ids == 0) return hp_errf(e, "%s: empty vocabulary", t->path);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_tok[b] = tk_vocab_get(t, name, 6);
    }
    /* normalized tokens are searched for in their normalized form */
    tk_work w;
    if (work_init(&w)) {
        work_free(&w);
        return hp_errf(e, "%s: out of memory", t->path);
    }
    for (int pass = 0; pass < 2; pass++) { /* special tokens first, as HF orders its tries */
        for (int i = 0; i < t->n_added; i++) {
            tk_added *ad = &t->added[i];
            if (ad->special != (pass == 0)) continue;
            if (ad->normalized && t->n_norm) {
                size_t off = arena_put(&w, t->pool.p + ad->content.off, ad->content.len), n = ad->content.len;
                int rc = off == SIZE_MAX ? hp_errf(e, "%s: out of memory", t->path) : normalize(t, &w, &off, &n, e);
                if (!rc && tk_intern(t, w.arena + off, n, &ad->pattern)) rc = hp_errf(e, "%s: out of memory", t->path);
                if (rc) {
                    work_free(&w);
                    return -1;
                }
            }
            if (trie_add(ad->normalized ? &t->trie_norm : &t->trie_raw, t->pool.p + ad->pattern.off, ad->pattern.len, i)) {
                work_free(&w);
                return hp_errf(e, "%s: out of memory", t->path);
            }
        }
    }
    work_free(&w);
    t->added_of_id = malloc((size_t)t->n_ids * sizeof *t->added_of_id);
    t->special = calloc((size_t)t->n_ids, 1);
    if (!t->added_of_id || !t->special) return hp_errf(e, "%s: out of memory", t->path);
    for (int32_t i = 0; i < t->n_ids; i++) t->added_of_id[i] = -1;
    for (int i = 0; i < t->n_added; i++) t->added_of_id[t->added[i].id] = i;
    /* decode skips by string, as HF's is_special_token(content); the string of a normalized
     * added token is its normalized form (HF's id_to_token), which is why this comes after */
    for (int32_t i = 0; i < t->n_ids; i++) {
        size_t len;
        const char *s = id_str(t, i, &len);
        if (!s) continue;
        int32_t a = tk_sm_get(&t->pool, &t->added_map, s, len);
        t->special[i] = (uint8_t)(a >= 0 && t->added[a].special);
    }
    if (t->bos >= t->n_ids) t->bos = -1;
    if (t->eos >= t->n_ids) t->eos = -1;
    t->adds_bos = t->n_prefix > 0 && t->bos >= 0 && t->prefix[0] == t->bos;
    for (int i = 0; i < t->n_prefix; i++)
        if (t->prefix[i] < 0 || t->prefix[i] >= t->n_ids) return hp_errf(e, "%s: post-processor id %d out of range", t->path, (int)t->prefix[i]);
    for (int i = 0; i < t->n_suffix; i++)
        if (t->suffix[i] < 0 || t->suffix[i] >= t->n_ids) return hp_errf(e, "%s: post-processor id %d out of range", t->path, (int)t->suffix[i]);
    return 0;
}

void hp_tok_free(hp_tokenizer *t) {
    if (!t) return;
    free(t->path);
    free(t->pool.p);
    free(t->piece);
    free(t->vocab.e);
    free(t->merges.e);
    free(t->cont_prefix);
    free(t->eow_suffix);
    free(t->added);
    free(t->added_map.e);
    free(t->trie_raw.node);
    free(t->trie_norm.node);
    free(t->special);
    free(t->added_of_id);
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
        if (t->norm[i].re) pcre2_code_free(t->norm[i].re);
    }
    free(t->norm);
    for (int i = 0; i < t->n_pre; i++)
        if (t->pre[i].re) pcre2_code_free(t->pre[i].re);
    free(t->pre);
    for (int i = 0; i < t->n_dec; i++) {
        free(t->dec[i].a);
        free(t->dec[i].b);
        if (t->dec[i].re) pcre2_code_free(t->dec[i].re);
    }
    free(t->dec);
    free(t->prefix);
    free(t->suffix);
    if (t->re_word) pcre2_code_free(t->re_word);
    free(t);
}

hp_tok_kind hp_tok_kind_of(const hp_tokenizer *t) { return t->kind; }
int hp_tok_vocab_size(const hp_tokenizer *t) { return t->n_ids; }
int hp_tok_bos(const hp_tokenizer *t) { return t->bos; }
int hp_tok_eos(const hp_tokenizer *t) { return t->eos; }
int hp_tok_adds_bos(const hp_tokenizer *t) { return t->adds_bos; }

const char *hp_tok_piece(const hp_tokenizer *t, int id) {
    size_t len;
    return t ? id_str(t, id, &len) : NULL;
}

int hp_tok_id(const hp_tokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    size_t n = strlen(piece);
    int32_t a = tk_sm_get(&t->pool, &t->added_map, piece, n);
    if (a >= 0) return t->added[a].id;
    return tk_vocab_get(t, piece, n);
}

int hp_tok_is_special(const hp_tokenizer *t, int id) {
    return t && id >= 0 && id < t->n_ids && t->special[id];
}
