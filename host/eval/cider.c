/* cider.c: CIDEr-D over a corpus of reference captions, and the PTB-like caption tokeniser
 * (see cider.h for the formula, which follows pycocoevalcap 1.2's cider_scorer.py).
 *
 * Words and n-grams of the references are interned (open-addressing tables keyed by FNV-1a);
 * each reference sentence keeps its n-grams sorted by id with their counts, and, once the
 * document frequencies are final, their weights and per-n norms. A candidate is cooked on the
 * fly: its words are looked up without being added (a word or n-gram no reference has gets
 * df 0, weight tf * log N, and adds only to the candidate's norm), and its known n-grams,
 * sorted by id, are merged with each reference's.
 *
 * Tokeniser (hp_cider_tokenize): the rules below reproduce what Stanford's PTBTokenizer 3.4.1
 * (-lowerCase -preserveLines) followed by pycocoevalcap's removal of the punctuation tokens
 * '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; gives on ordinary English captions
 * (tests/fixtures/cider/cider.json holds real PTBTokenizer output that tests/test_cider.c
 * compares with):
 *   - ASCII is lower-cased; curly quotes and apostrophes, the ellipsis character and en/em
 *     dashes count as their ASCII forms; whitespace separates tokens;
 *   - brackets become -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- and stay: pycocoevalcap removes the
 *     upper-case forms, but -lowerCase has already lower-cased them;
 *   - , ; : " ` and runs of '.' or '-' are dropped, except ',' ':' between digits (1,000 10:30),
 *     '.' inside a word or number (3.5 x.y .5), '-' inside a word (t-shirt) or before a digit
 *     at a word's start (-5), and a final '.' of an abbreviation (u.s. a.m. mr. st. etc.);
 *   - a single ! or ? is dropped, a run of two or more (!! ?!) is a token;
 *   - clitics split off: 's 'm 'd 're 've 'll and n't (don't -> do n't, can't -> ca n't), and
 *     cannot gonna gotta wanna split as PTB does; other apostrophes at a word's edge (quotes,
 *     dogs') are dropped, one inside a word (o'neil) stays;
 *   - & % $ # @ + = * < > ^ | ~ are tokens of their own (at&t -> at & t, 50% -> 50 %, $5 -> $ 5);
 *     everything else (letters, digits, '/', '_', other bytes) belongs to words.
 * Known differences: non-ASCII letters are not lower-cased; PTB's abbreviation list is far
 * longer than the handful kept here; "rock'n'roll" -> rock 'n' roll, "_x" -> _ x, a '.'
 * joining two words without a space (shirt.a) and PTB's other rarely-hit rules are not
 * reproduced; PTB leaves the very first token of its input file in its case (pycocoevalcap
 * feeds all captions as one file). */
#include "cider.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NG 4           /* n-grams of 1..NG words */
#define SIGMA 6.0      /* length penalty's standard deviation */

typedef struct gram {
    int32_t n, w[NG]; /* word ids; unused slots 0 (n tells them apart) */
} gram;

/* One distinct n-gram of a sentence. */
typedef struct cooked {
    gram g;
    int32_t tf, id; /* id: the corpus n-gram, -1 if none */
} cooked;

struct hp_cider {
    int raw, failed, weighted; /* weighted: e_val / s_norm match the current document frequencies */
    /* words: id -> string; slots hold id + 1, 0 = empty */
    char **word;
    int n_word;
    size_t cap_word, n_wslot;
    int32_t *wslot;
    /* n-grams of the references: key, document frequency, the last image that counted it */
    gram *gk;
    int32_t *df, *df_img;
    int n_gram;
    size_t cap_gram, n_gslot;
    int32_t *gslot;
    /* reference sentences: entries [first, first + count) sorted by n-gram id */
    int32_t *s_first, *s_count, *s_bigrams;
    double (*s_norm)[NG];
    int n_sent;
    size_t cap_sent;
    int32_t *e_gram, *e_tf;
    double *e_val;
    size_t n_ent, cap_ent;
    /* images: reference sentences [first, first + refs) */
    int32_t *i_first, *i_refs;
    int n_img;
    size_t cap_img;
};

/* p resized to n elements of sz bytes (NULL on overflow or out of memory; p is kept then). */
static void *resize(void *p, size_t n, size_t sz) {
    size_t b;
    return hp_mul_ok(n, sz, &b) ? realloc(p, b ? b : 1) : NULL;
}
/* Capacity for need elements, doubling from cap. */
static size_t next_cap(size_t cap, size_t need) {
    size_t nc = cap ? cap : 16;
    while (nc < need) nc *= 2;
    return nc;
}
/* Resizes arr to n elements or jumps to oom. */
#define GROW(arr, n)                                          \
    do {                                                      \
        void *q_ = resize((arr), (n), sizeof *(arr));         \
        if (!q_) goto oom;                                    \
        (arr) = q_;                                           \
    } while (0)

static int is_space(unsigned char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }
static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }
static int is_alpha(unsigned char ch) { return ch >= 'a' && ch <= 'z'; } /* after lower-casing */
static int is_wordch(unsigned char ch) { return is_alpha(ch) || is_digit(ch) || ch >= 0x80; }

/* ---- tokeniser ---------------------------------------------------------------------------- */

typedef struct tokbuf {
    char *out, *w; /* output; the word being built */
    size_t o, wl;
} tokbuf;

static void emit(tokbuf *t, const char *s, size_t n) {
    if (t->o) t->out[t->o++] = ' ';
    memcpy(t->out + t->o, s, n);
    t->o += n;
}

/* Ends the current word, splitting PTB's fused forms. */
static void flush(tokbuf *t) {
    static const char *const split[][2] = {{"cannot", "can"}, {"gonna", "gon"}, {"gotta", "got"}, {"wanna", "wan"}};
    if (!t->wl) return;
    for (size_t i = 0; i < sizeof split / sizeof *split; i++) {
        size_t a = strlen(split[i][0]), b = strlen(split[i][1]);
        if (t->wl == a && !memcmp(t->w, split[i][0], a)) {
            emit(t, t->w, b);
            emit(t, t->w + b, a - b);
            t->wl = 0;
            return;
        }
    }
    emit(t, t->w, t->wl);
    t->wl = 0;
}

/* A word whose final '.' PTB keeps: single letters joined by dots (u.s, a.m, e.g) or a title. */
static int abbrev(const char *w, size_t n) {
    static const char *const titles[] = {"mr", "mrs", "ms", "dr", "st", "jr", "sr",
                                         "vs", "etc", "mt", "ave", "co", "inc"};
    int dotted = n >= 3 && n % 2 == 1;
    for (size_t i = 0; dotted && i < n; i++) dotted = i % 2 ? w[i] == '.' : is_alpha((unsigned char)w[i]);
    if (dotted) return 1;
    for (size_t i = 0; i < sizeof titles / sizeof *titles; i++)
        if (strlen(titles[i]) == n && !memcmp(w, titles[i], n)) return 1;
    return 0;
}

/* Length of the clitic ('s 'm 'd 're 've 'll) at s, 0 if none; s[0] is the apostrophe. */
static size_t clitic(const char *s) {
    static const char *const cl[] = {"'s", "'m", "'d", "'re", "'ve", "'ll"};
    for (size_t i = 0; i < sizeof cl / sizeof *cl; i++) {
        size_t n = strlen(cl[i]);
        if (!strncmp(s, cl[i], n) && !is_wordch((unsigned char)s[n])) return n;
    }
    return 0;
}

/* Lower-cased copy with the common Unicode punctuation replaced by its ASCII form (never longer). */
static char *fold(const char *s) {
    size_t n = strlen(s), k = 0;
    char *t = malloc(n + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        if (u[0] == 0xE2 && u[1] == 0x80 && u[2]) {
            const char *rep = NULL;
            switch (u[2]) {
            case 0x98: case 0x99: rep = "'"; break;   /* ‘ ’ */
            case 0x9C: case 0x9D: rep = "\""; break;  /* “ ” */
            case 0xA6: rep = "..."; break;            /* … */
            case 0x93: case 0x94: rep = "--"; break;  /* – — */
            }
            if (rep) {
                memcpy(t + k, rep, strlen(rep));
                k += strlen(rep);
                i += 2;
                continue;
            }
        }
        t[k++] = (char)(u[0] >= 'A' && u[0] <= 'Z' ? u[0] + 32 : u[0]);
    }
    t[k] = 0;
    return t;
}

char *hp_cider_tokenize(const char *s) {
    char *in = fold(s);
    size_t n = in ? strlen(in) : 0;
    tokbuf t = {.out = in ? malloc(6 * n + 1) : NULL, .w = in ? malloc(n + 1) : NULL}; /* "(" -> " -lrb-" */
    if (!t.out || !t.w) {
        free(in);
        free(t.out);
        free(t.w);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i], next = (unsigned char)in[i + 1];
        int after_digit = t.wl && is_digit((unsigned char)t.w[t.wl - 1]);
        const char *bracket = NULL;
        switch (ch) {
        case '(': bracket = "-lrb-"; break;
        case ')': bracket = "-rrb-"; break;
        case '[': bracket = "-lsb-"; break;
        case ']': bracket = "-rsb-"; break;
        case '{': bracket = "-lcb-"; break;
        case '}': bracket = "-rcb-"; break;
        }
        if (bracket) {
            flush(&t);
            emit(&t, bracket, 5);
        } else if (is_space(ch) || ch == '"' || ch == '`' || ch == ';') {
            flush(&t);
        } else if (ch == ',' || ch == ':') {
            if (after_digit && is_digit(next)) t.w[t.wl++] = (char)ch;
            else flush(&t);
        } else if (ch == '!' || ch == '?') {
            flush(&t);
            size_t j = i;
            while (in[j + 1] == '!' || in[j + 1] == '?') j++;
            if (j > i) emit(&t, in + i, j - i + 1);
            i = j;
        } else if (ch == '.') {
            if ((t.wl && is_wordch(next)) || (!t.wl && is_digit(next))) {
                t.w[t.wl++] = '.';
            } else if (t.wl && abbrev(t.w, t.wl)) {
                t.w[t.wl++] = '.';
                flush(&t);
            } else {
                flush(&t);
                while (in[i + 1] == '.') i++;
            }
        } else if (ch == '-' || ch == '+') {
            if ((ch == '-' && t.wl && is_wordch(next)) || (!t.wl && is_digit(next))) {
                t.w[t.wl++] = (char)ch;
            } else if (ch == '+') {
                flush(&t);
                emit(&t, "+", 1);
            } else {
                flush(&t);
                while (in[i + 1] == '-') i++;
            }
        } else if (ch == '\'') {
            size_t cl;
            if (t.wl && t.w[t.wl - 1] == 'n' && next == 't' && !is_wordch((unsigned char)in[i + 2])) {
                t.wl--; /* do|n't */
                flush(&t);
                emit(&t, "n't", 3);
                i++;
            } else if ((cl = clitic(in + i))) {
                flush(&t);
                emit(&t, in + i, cl);
                i += cl - 1;
            } else if (t.wl && is_wordch(next)) {
                t.w[t.wl++] = '\'';
            } else {
                flush(&t); /* a quote, or a plural's apostrophe */
            }
        } else if (strchr("&%$#@=*<>^|~", ch)) {
            flush(&t);
            emit(&t, in + i, 1);
        } else {
            t.w[t.wl++] = (char)ch;
        }
    }
    flush(&t);
    t.out[t.o] = 0;
    free(in);
    free(t.w);
    return t.out;
}

/* ---- corpus ------------------------------------------------------------------------------- */

hp_cider *hp_cider_new(int raw) {
    hp_cider *c = calloc(1, sizeof *c);
    if (c) c->raw = raw;
    return c;
}

void hp_cider_free(hp_cider *c) {
    if (!c) return;
    for (int i = 0; i < c->n_word; i++) free(c->word[i]);
    free(c->word);
    free(c->wslot);
    free(c->gk);
    free(c->df);
    free(c->df_img);
    free(c->gslot);
    free(c->s_first);
    free(c->s_count);
    free(c->s_bigrams);
    free(c->s_norm);
    free(c->e_gram);
    free(c->e_tf);
    free(c->e_val);
    free(c->i_first);
    free(c->i_refs);
    free(c);
}

int hp_cider_n_images(const hp_cider *c) { return c->n_img; }

/* Rebuilds a slot table (a power of two, >= 4 slots per key: rebuilt again at half full). */
static int rehash(int32_t **slot, size_t *n_slot, int n_keys, uint64_t (*hash)(const hp_cider *, int),
                  const hp_cider *c) {
    size_t ns = 64;
    while (ns < 4 * (size_t)n_keys) ns *= 2;
    int32_t *s = calloc(ns, sizeof *s);
    if (!s) return -1;
    for (int i = 0; i < n_keys; i++) {
        size_t h = (size_t)hash(c, i) & (ns - 1);
        while (s[h]) h = (h + 1) & (ns - 1);
        s[h] = i + 1;
    }
    free(*slot);
    *slot = s;
    *n_slot = ns;
    return 0;
}

static uint64_t word_hash(const hp_cider *c, int i) { return hp_fnv1a(HP_FNV_OFFSET, c->word[i], strlen(c->word[i])); }
static uint64_t gram_hash(const hp_cider *c, int i) { return hp_fnv1a(HP_FNV_OFFSET, &c->gk[i], sizeof(gram)); }

/* Id of word s[0..n), or -1 when absent; insert: add it (-2 when out of memory). */
static int32_t word_id(hp_cider *c, const char *s, size_t n, int insert) {
    if (c->n_wslot) {
        size_t h = (size_t)hp_fnv1a(HP_FNV_OFFSET, s, n) & (c->n_wslot - 1);
        for (; c->wslot[h]; h = (h + 1) & (c->n_wslot - 1)) {
            const char *w = c->word[c->wslot[h] - 1];
            if (!strncmp(w, s, n) && !w[n]) return c->wslot[h] - 1;
        }
    }
    if (!insert) return -1;
    char *w = strndup(s, n);
    if (!w) return -2;
    if ((size_t)c->n_word + 1 > c->cap_word) {
        size_t nc = next_cap(c->cap_word, (size_t)c->n_word + 1);
        GROW(c->word, nc);
        c->cap_word = nc;
    }
    c->word[c->n_word++] = w;
    if ((size_t)c->n_word * 2 > c->n_wslot) {
        if (rehash(&c->wslot, &c->n_wslot, c->n_word, word_hash, c)) {
            c->n_word--; /* the table still holds the others */
            goto oom;
        }
    } else {
        size_t h = (size_t)hp_fnv1a(HP_FNV_OFFSET, s, n) & (c->n_wslot - 1);
        while (c->wslot[h]) h = (h + 1) & (c->n_wslot - 1);
        c->wslot[h] = c->n_word;
    }
    return c->n_word - 1;
oom:
    free(w);
    return -2;
}

/* Id of an n-gram, or -1 when absent; insert: add it with df 0 (-2 when out of memory). */
static int32_t gram_id(hp_cider *c, const gram *g, int insert) {
    if (c->n_gslot) {
        size_t h = (size_t)hp_fnv1a(HP_FNV_OFFSET, g, sizeof *g) & (c->n_gslot - 1);
        for (; c->gslot[h]; h = (h + 1) & (c->n_gslot - 1))
            if (!memcmp(&c->gk[c->gslot[h] - 1], g, sizeof *g)) return c->gslot[h] - 1;
    }
    if (!insert) return -1;
    if ((size_t)c->n_gram + 1 > c->cap_gram) {
        size_t nc = next_cap(c->cap_gram, (size_t)c->n_gram + 1);
        GROW(c->gk, nc);
        GROW(c->df, nc);
        GROW(c->df_img, nc);
        c->cap_gram = nc;
    }
    c->gk[c->n_gram] = *g;
    c->df[c->n_gram] = 0;
    c->df_img[c->n_gram] = -1;
    c->n_gram++;
    if ((size_t)c->n_gram * 2 > c->n_gslot) {
        if (rehash(&c->gslot, &c->n_gslot, c->n_gram, gram_hash, c)) {
            c->n_gram--;
            return -2;
        }
    } else {
        size_t h = (size_t)hp_fnv1a(HP_FNV_OFFSET, g, sizeof *g) & (c->n_gslot - 1);
        while (c->gslot[h]) h = (h + 1) & (c->n_gslot - 1);
        c->gslot[h] = c->n_gram;
    }
    return c->n_gram - 1;
oom:
    return -2;
}

/* The word ids of a sentence (tokenised first when raw). insert: new words join the vocabulary;
 * else a word the references lack gets a negative id, the same for equal words. *nw words. */
static int sentence_ids(hp_cider *c, const char *s, int insert, int32_t **ids, int *nw) {
    char *t = c->raw ? hp_cider_tokenize(s) : strdup(s);
    size_t n = t ? strlen(t) : 0;
    int32_t *v = t ? malloc(sizeof *v * (n / 2 + 1)) : NULL; /* words <= (n + 1) / 2 */
    const char **unk = t ? malloc(sizeof *unk * (n / 2 + 1)) : NULL;
    size_t *unk_len = t ? malloc(sizeof *unk_len * (n / 2 + 1)) : NULL;
    int k = 0, n_unk = 0, rc = -1;
    if (!v || !unk || !unk_len) goto out;
    for (size_t i = 0; i < n;) {
        while (i < n && is_space((unsigned char)t[i])) i++;
        size_t a = i;
        while (i < n && !is_space((unsigned char)t[i])) i++;
        if (i == a) break;
        int32_t id = word_id(c, t + a, i - a, insert);
        if (id == -2) goto out;
        if (id == -1) { /* not in the references: ids -1, -2, ... per distinct word */
            int u = 0;
            while (u < n_unk && !(unk_len[u] == i - a && !memcmp(unk[u], t + a, i - a))) u++;
            if (u == n_unk) {
                unk[n_unk] = t + a;
                unk_len[n_unk++] = i - a;
            }
            id = -1 - u;
        }
        v[k++] = id;
    }
    rc = 0;
out:
    free(t);
    free(unk);
    free(unk_len);
    if (rc) free(v);
    else {
        *ids = v;
        *nw = k;
    }
    return rc;
}

static int cmp_gram(const void *a, const void *b) {
    return memcmp(&((const cooked *)a)->g, &((const cooked *)b)->g, sizeof(gram));
}
static int cmp_id(const void *a, const void *b) {
    int32_t x = ((const cooked *)a)->id, y = ((const cooked *)b)->id;
    return (x > y) - (x < y);
}

/* The distinct n-grams (1..NG words) of ids[0..nw) with their counts, sorted by key. */
static int cook(const int32_t *ids, int nw, cooked **out, int *n_out) {
    size_t m = 0;
    for (int k = 1; k <= NG; k++) m += nw >= k ? (size_t)(nw - k + 1) : 0;
    cooked *v = malloc(sizeof *v * (m ? m : 1));
    if (!v) return -1;
    size_t j = 0;
    for (int k = 1; k <= NG; k++)
        for (int i = 0; i + k <= nw; i++) {
            memset(&v[j].g, 0, sizeof v[j].g);
            v[j].g.n = k;
            memcpy(v[j].g.w, ids + i, sizeof *ids * (size_t)k);
            v[j].tf = 1;
            v[j++].id = -1;
        }
    qsort(v, m, sizeof *v, cmp_gram);
    size_t d = 0;
    for (size_t i = 0; i < m; i++) {
        if (d && !memcmp(&v[d - 1].g, &v[i].g, sizeof(gram))) v[d - 1].tf++;
        else v[d++] = v[i];
    }
    *out = v;
    *n_out = (int)d;
    return 0;
}

int hp_cider_add_image(hp_cider *c, const char *const *refs, int n_refs, hp_err *e) {
    if (c->failed) return hp_errf(e, "CIDEr corpus unusable after an earlier error");
    if (n_refs < 1) return hp_errf(e, "CIDEr: image %d has no reference caption", c->n_img);
    for (int r = 0; r < n_refs; r++)
        if (!refs[r]) return hp_errf(e, "CIDEr: image %d, reference %d is NULL", c->n_img, r);
    int img = c->n_img;
    int32_t *ids = NULL;
    cooked *ck = NULL;
    if ((size_t)img + 1 > c->cap_img) {
        size_t nc = next_cap(c->cap_img, (size_t)img + 1);
        GROW(c->i_first, nc);
        GROW(c->i_refs, nc);
        c->cap_img = nc;
    }
    c->i_first[img] = c->n_sent;
    c->i_refs[img] = 0;
    for (int r = 0; r < n_refs; r++) {
        int nw = 0, nc = 0, s = c->n_sent;
        if (sentence_ids(c, refs[r], 1, &ids, &nw) || cook(ids, nw, &ck, &nc)) goto oom;
        if ((size_t)s + 1 > c->cap_sent) {
            size_t cap = next_cap(c->cap_sent, (size_t)s + 1);
            GROW(c->s_first, cap);
            GROW(c->s_count, cap);
            GROW(c->s_bigrams, cap);
            GROW(c->s_norm, cap);
            c->cap_sent = cap;
        }
        if (c->n_ent + (size_t)nc > c->cap_ent) {
            size_t cap = next_cap(c->cap_ent, c->n_ent + (size_t)nc);
            GROW(c->e_gram, cap);
            GROW(c->e_tf, cap);
            GROW(c->e_val, cap);
            c->cap_ent = cap;
        }
        for (int i = 0; i < nc; i++) {
            if ((ck[i].id = gram_id(c, &ck[i].g, 1)) < 0) goto oom;
            if (c->df_img[ck[i].id] != img) { /* df counts images, not sentences */
                c->df_img[ck[i].id] = img;
                c->df[ck[i].id]++;
            }
        }
        qsort(ck, (size_t)nc, sizeof *ck, cmp_id);
        c->s_first[s] = (int32_t)c->n_ent;
        c->s_count[s] = nc;
        c->s_bigrams[s] = nw > 1 ? nw - 1 : 0;
        for (int i = 0; i < nc; i++) {
            c->e_gram[c->n_ent + (size_t)i] = ck[i].id;
            c->e_tf[c->n_ent + (size_t)i] = ck[i].tf;
        }
        c->n_ent += (size_t)nc;
        c->n_sent++;
        c->i_refs[img]++;
        free(ids);
        free(ck);
        ids = NULL;
        ck = NULL;
    }
    c->n_img++;
    c->weighted = 0;
    return img;
oom:
    free(ids);
    free(ck);
    c->failed = 1;
    return hp_errf(e, "out of memory");
}

/* tf-idf weight of an n-gram seen df times among the images' references (df 0: never). */
static double weight(int tf, int df, double log_n) { return (double)tf * (log_n - log(df > 1 ? (double)df : 1.0)); }

/* Weights and per-n norms of every reference sentence for the current document frequencies. */
static void weigh(hp_cider *c) {
    double log_n = log((double)c->n_img);
    for (int s = 0; s < c->n_sent; s++) {
        double sq[NG] = {0};
        for (int32_t i = c->s_first[s]; i < c->s_first[s] + c->s_count[s]; i++) {
            int32_t g = c->e_gram[i];
            double v = weight(c->e_tf[i], c->df[g], log_n);
            c->e_val[i] = v;
            sq[c->gk[g].n - 1] += v * v;
        }
        for (int k = 0; k < NG; k++) c->s_norm[s][k] = sqrt(sq[k]);
    }
    c->weighted = 1;
}

int hp_cider_score(hp_cider *c, const char *const *cands, double *per_image, double *mean, hp_err *e) {
    if (c->failed) return hp_errf(e, "CIDEr corpus unusable after an earlier error");
    if (!c->n_img) return hp_errf(e, "CIDEr: the corpus has no image");
    for (int i = 0; i < c->n_img; i++)
        if (!cands[i]) return hp_errf(e, "CIDEr: no candidate caption for image %d", i);
    if (!c->weighted) weigh(c);
    double log_n = log((double)c->n_img), total = 0.0;
    for (int img = 0; img < c->n_img; img++) {
        int32_t *ids = NULL;
        int nw = 0, nc = 0;
        cooked *ck = NULL;
        if (sentence_ids(c, cands[img], 0, &ids, &nw) || cook(ids, nw, &ck, &nc)) {
            free(ids);
            return hp_errf(e, "out of memory");
        }
        free(ids);
        /* weights of the candidate's n-grams: in place of tf, with ids; norms over all of them */
        double hsq[NG] = {0}, hnorm[NG], *hval = malloc(sizeof *hval * (size_t)(nc ? nc : 1));
        if (!hval) {
            free(ck);
            return hp_errf(e, "out of memory");
        }
        for (int i = 0; i < nc; i++) {
            int known = 1;
            for (int k = 0; k < ck[i].g.n; k++) known &= ck[i].g.w[k] >= 0;
            ck[i].id = known ? gram_id(c, &ck[i].g, 0) : -1;
        }
        qsort(ck, (size_t)nc, sizeof *ck, cmp_id); /* unknown (-1) first */
        for (int i = 0; i < nc; i++) {
            hval[i] = weight(ck[i].tf, ck[i].id >= 0 ? c->df[ck[i].id] : 0, log_n);
            hsq[ck[i].g.n - 1] += hval[i] * hval[i];
        }
        for (int k = 0; k < NG; k++) hnorm[k] = sqrt(hsq[k]);
        int h_bigrams = nw > 1 ? nw - 1 : 0;
        double score[NG] = {0};
        for (int32_t s = c->i_first[img]; s < c->i_first[img] + c->i_refs[img]; s++) {
            double val[NG] = {0};
            int32_t r = c->s_first[s], r_end = r + c->s_count[s];
            for (int i = 0; i < nc && r < r_end; i++) { /* merge on the n-gram id */
                if (ck[i].id < 0) continue;
                while (r < r_end && c->e_gram[r] < ck[i].id) r++;
                if (r < r_end && c->e_gram[r] == ck[i].id) {
                    double rv = c->e_val[r];
                    val[ck[i].g.n - 1] += (hval[i] < rv ? hval[i] : rv) * rv; /* clipped */
                }
            }
            double delta = (double)(h_bigrams - c->s_bigrams[s]);
            double penalty = exp(-(delta * delta) / (2.0 * SIGMA * SIGMA));
            for (int k = 0; k < NG; k++) {
                if (hnorm[k] != 0.0 && c->s_norm[s][k] != 0.0) val[k] /= hnorm[k] * c->s_norm[s][k];
                score[k] += val[k] * penalty;
            }
        }
        double v = 0.0;
        for (int k = 0; k < NG; k++) v += score[k];
        v = v / NG / c->i_refs[img] * 10.0;
        if (per_image) per_image[img] = v;
        total += v;
        free(hval);
        free(ck);
    }
    *mean = total / c->n_img;
    return 0;
}
