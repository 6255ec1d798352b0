/* tokenizer_gguf.c: builds an hp_tokenizer from a GGUF file's tokenizer.ggml.* metadata, the way
 * transformers converts it (integrations/gguf: GPT2Tokenizer for "gpt2", LlamaTokenizer for
 * "llama"), with one deliberate difference: the pre-tokenizer of a "gpt2" vocabulary follows
 * tokenizer.ggml.pre as llama.cpp and the model's original tokenizer.json do (e.g. "smollm"
 * splits digits one by one before the GPT-2 regex; transformers' conversion omits that step and
 * so encodes "  1" differently from the model's own tokenizer).
 *
 *  - "gpt2": byte-level BPE with the file's merges; control tokens (token_type 3) become special
 *    added tokens, user-defined ones (4) plain added tokens.
 *  - "llama": SentencePiece-style BPE (Metaspace "first", byte fallback); without
 *    tokenizer.ggml.merges the merges are rebuilt from the scores as transformers'
 *    generate_merges does (every split of every piece into two pieces, best score first).
 * The bos/eos/unk/padding tokens are special added tokens too, as transformers makes them. */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "gguf.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct gctx {
    hp_tokenizer *t;
    const hp_gguf *g;
    const char *path;
    hp_err *e;
    const hp_gguf_kv *tokens, *types, *scores, *merges;
    uint64_t n;
} gctx;

/* 1 if every character of the (valid UTF-8) string is one of the 256 byte-level characters. */
static int in_alphabet(const hp_tokenizer *t, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)tk_utf8_next(s + i, n - i, &cp);
        if (tk_cp_to_byte(t, cp) < 0) return 0;
    }
    return 1;
}

static int token_type(const gctx *c, uint64_t i) {
    int64_t v;
    if (!c->types || hp_gguf_arr_int(c->types, i, &v)) return TT_NORMAL;
    return (int)v;
}

/* ---- merges rebuilt from scores (transformers' generate_merges) ---- */

typedef struct cand {
    int32_t l, r;          /* ids: vocab[l], vocab[r] */
    double score;
    uint32_t len_l, len_r; /* in code points, as Python's len() */
    uint32_t seq;          /* position before the global sort: Python's sort is stable */
} cand;

static int cmp_local(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->l != b->l) return a->l < b->l ? -1 : 1;
    if (a->r != b->r) return a->r < b->r ? -1 : 1;
    return 0;
}

/* sorted(key=(score, len_l, len_r), reverse=True): descending keys, ties in original order */
static int cmp_global(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->len_l != b->len_l) return a->len_l > b->len_l ? -1 : 1;
    if (a->len_r != b->len_r) return a->len_r > b->len_r ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static uint32_t cp_count(const char *s, size_t n) {
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((uint8_t)s[i] & 0xC0) != 0x80;
    return k;
}

static int merges_from_scores(gctx *c) {
    hp_tokenizer *t = c->t;
    if (!c->scores || c->scores->type != HP_GGUF_ARRAY || c->scores->n != c->n)
        return hp_errf(c->e, "%s: tokenizer.ggml.merges is absent, and tokenizer.ggml.scores (one per token) is needed to rebuild them",
                       c->path);
    cand *cs = NULL;
    size_t nc = 0, cap = 0;
    int rc = 0;
    /* iterate unique tokens in first-occurrence order (a Python dict's order); a repeated
     * token's id and score are those of its last occurrence (the dict's value) */
    tk_strmap seen = {0};
    for (uint64_t i = 0; i < c->n && !rc; i++) {
        const char *s = t->pool.p + t->piece[i].off;
        size_t n = t->piece[i].len;
        if (tk_sm_get(&t->pool, &seen, s, n) >= 0) continue;
        if (tk_sm_put(&t->pool, &seen, t->piece[i], (int32_t)i)) {
            rc = hp_errf(c->e, "%s: out of memory", c->path);
            break;
        }
        int32_t last = tk_vocab_get(t, s, n);
        double score = hp_gguf_arr_float(c->scores, (uint64_t)last);
        size_t local0 = nc;
        for (size_t k = 1; k < n; k++) {
            if (((uint8_t)s[k] & 0xC0) == 0x80) continue; /* split at code point boundaries */
            int32_t l = tk_vocab_get(t, s, k), rr = tk_vocab_get(t, s + k, n - k);
            if (l < 0 || rr < 0) continue;
            if (nc == cap) {
                size_t ncap = cap ? cap * 2 : 4096;
                cand *p = realloc(cs, ncap * sizeof *p);
                if (!p) {
                    rc = hp_errf(c->e, "%s: out of memory", c->path);
                    break;
                }
                cs = p;
                cap = ncap;
            }
            cs[nc++] = (cand){l, rr, score, cp_count(s, k), cp_count(s + k, n - k), 0};
        }
        if (nc - local0 > 1) qsort(cs + local0, nc - local0, sizeof *cs, cmp_local);
    }
    free(seen.e);
    for (size_t i = 0; i < nc; i++) cs[i].seq = (uint32_t)i;
    if (!rc && nc > 1) qsort(cs, nc, sizeof *cs, cmp_global);
    for (size_t i = 0; i < nc && !rc; i++) {
        tk_sref l = t->piece[cs[i].l], r = t->piece[cs[i].r];
        rc = tk_add_merge(t, t->pool.p + l.off, l.len, t->pool.p + r.off, r.len, "tokenizer.ggml.scores", c->e);
    }
    free(cs);
    return rc;
}

/* ---- pre-tokenizer of a byte-level vocabulary, by tokenizer.ggml.pre ---- */

static const char qwen2_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static tk_pre *add_pre(gctx *c, int type) {
    hp_tokenizer *t = c->t;
    tk_pre *p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
    if (!p) {
        hp_errf(c->e, "%s: out of memory", c->path);
        return NULL;
    }
    t->pre = p;
    memset(&p[t->n_pre], 0, sizeof *p);
    p[t->n_pre].type = type;
    return &p[t->n_pre++];
}

static int name_in(const char *s, const char *const *names) {
    for (; *names; names++)
        if (!strcmp(s, *names)) return 1;
    return 0;
}

static int bytelevel_pre(gctx *c) {
    const char *pre = hp_gguf_get_str(c->g, "tokenizer.ggml.pre");
    static const char *const gpt2[] = {"default", "gpt2", "gpt-2", "mpt", "olmo", "jais", NULL};
    static const char *const digits[] = {"smollm", "starcoder", "refact", "command-r", "codeshell",
                                         "exaone", "minerva", NULL};
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                         "pixtral", "dbrx", "smaug-bpe", NULL};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "stablelm2", NULL};
    tk_pre *p;
    if (!pre || name_in(pre, gpt2)) {
        if (!(p = add_pre(c, TK_PRE_BYTELEVEL))) return -1;
        p->re = tk_compile(c->t, tk_gpt2_pattern, PCRE2_ZERO_TERMINATED, 0, "tokenizer.ggml.pre", c->e);
        return p->re ? 0 : -1;
    }
    if (name_in(pre, digits)) {
        if (!(p = add_pre(c, TK_PRE_DIGITS))) return -1;
        p->behavior = TK_ISOLATED;
        if (!(p->re = tk_compile(c->t, "\\p{N}", PCRE2_ZERO_TERMINATED, 0, "tokenizer.ggml.pre", c->e))) return -1;
        if (!(p = add_pre(c, TK_PRE_BYTELEVEL))) return -1;
        p->re = tk_compile(c->t, tk_gpt2_pattern, PCRE2_ZERO_TERMINATED, 0, "tokenizer.ggml.pre", c->e);
        return p->re ? 0 : -1;
    }
    const char *pat = NULL;
    if (name_in(pre, llama3)) {
        pat = tk_llama3_pattern;
        c->t->ignore_merges = 1; /* Llama-3's tokenizer.json and llama.cpp both set it */
    } else if (name_in(pre, qwen2)) {
        pat = qwen2_pattern;
    }
    if (!pat)
        return hp_errf(c->e, "%s: tokenizer.ggml.pre \"%s\" is not supported (default, gpt2, smollm, starcoder, llama-bpe, qwen2, ...)",
                       c->path, pre);
    if (!(p = add_pre(c, TK_PRE_SPLIT))) return -1;
    p->behavior = TK_ISOLATED;
    if (!(p->re = tk_compile(c->t, pat, PCRE2_ZERO_TERMINATED, 0, "tokenizer.ggml.pre", c->e))) return -1;
    return add_pre(c, TK_PRE_BYTELEVEL) ? 0 : -1;
}

/* ---- common parts ---- */

static int add_dec(gctx *c, int type, const char *a, const char *b) {
    hp_tokenizer *t = c->t;
    tk_dec *d = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *d);
    if (!d) return hp_errf(c->e, "%s: out of memory", c->path);
    t->dec = d;
    d = &d[t->n_dec++];
    memset(d, 0, sizeof *d);
    d->type = type;
    if (a && (!(d->a = strdup(a)) || !(d->b = strdup(b)))) return hp_errf(c->e, "%s: out of memory", c->path);
    if (a) {
        d->alen = strlen(a);
        d->blen = strlen(b);
    }
    t->has_decoder = 1;
    return 0;
}

static int opt_id(gctx *c, const char *key, int32_t *out) {
    int64_t v;
    *out = -1;
    if (!hp_gguf_get(c->g, key)) return 0;
    if (hp_gguf_get_int(c->g, key, &v, c->e)) return -1;
    if (v < 0 || (uint64_t)v >= c->n) return hp_errf(c->e, "%s: %s = %lld is not a token id (vocabulary of %llu)", c->path, key, (long long)v, (unsigned long long)c->n);
    *out = (int32_t)v;
    return 0;
}

static int opt_bool(gctx *c, const char *key, int def, int *out) {
    int64_t v;
    *out = def;
    if (!hp_gguf_get(c->g, key)) return 0;
    if (hp_gguf_get_int(c->g, key, &v, c->e)) return -1;
    *out = v != 0;
    return 0;
}

/* The special token with this GGUF id, added under the id the vocabulary gives its string. */
static int add_special_by_id(gctx *c, int32_t id) {
    if (id < 0) return 0;
    const char *s = c->tokens->strs[id];
    size_t n = c->tokens->str_lens[id];
    int32_t vid = tk_vocab_get(c->t, s, n);
    if (vid < 0) return 0; /* respelled away (byte-level): transformers would append a new id */
    return tk_add_added(c->t, s, n, vid, 1, 0, 0, 0, 0, c->e);
}

static int load(gctx *c) {
    hp_tokenizer *t = c->t;
    const char *model = hp_gguf_get_str(c->g, "tokenizer.ggml.model");
    const char *arch = hp_gguf_get_str(c->g, "general.architecture");
    if (!model) return hp_errf(c->e, "%s: no tokenizer.ggml.model string in the metadata", c->path);
    int bytelevel = !strcmp(model, "gpt2");
    if (!bytelevel && strcmp(model, "llama"))
        return hp_errf(c->e, "%s: tokenizer.ggml.model \"%s\" is not supported (gpt2, llama)", c->path, model);
    int gemma3 = arch && !strcmp(arch, "gemma3");
    if (!bytelevel && arch && !strncmp(arch, "gemma", 5) && !gemma3)
        return hp_errf(c->e, "%s: the %s sentencepiece tokenizer is not supported", c->path, arch);

    c->tokens = hp_gguf_get(c->g, "tokenizer.ggml.tokens");
    if (!c->tokens || c->tokens->type != HP_GGUF_ARRAY || c->tokens->arr_type != HP_GGUF_STRING || !c->tokens->strs)
        return hp_errf(c->e, "%s: tokenizer.ggml.tokens: expected an array of strings", c->path);
    c->n = c->tokens->n;
    if (c->n == 0 || c->n > (uint64_t)TK_MAX_ID + 1)
        return hp_errf(c->e, "%s: tokenizer.ggml.tokens: %llu tokens", c->path, (unsigned long long)c->n);
    c->types = hp_gguf_get(c->g, "tokenizer.ggml.token_type");
    if (c->types && (c->types->type != HP_GGUF_ARRAY || c->types->n != c->n))
        return hp_errf(c->e, "%s: tokenizer.ggml.token_type: expected %llu integers", c->path, (unsigned long long)c->n);
    c->scores = hp_gguf_get(c->g, "tokenizer.ggml.scores");
    c->merges = hp_gguf_get(c->g, "tokenizer.ggml.merges");
    if (c->merges && (c->merges->type != HP_GGUF_ARRAY || c->merges->arr_type != HP_GGUF_STRING || !c->merges->strs))
        return hp_errf(c->e, "%s: tokenizer.ggml.merges: expected an array of strings", c->path);

    /* vocabulary: a byte-level token with characters outside the byte alphabet is respelled
     * byte by byte, as transformers' byte_level_tokenizer does */
    for (uint64_t i = 0; i < c->n; i++) {
        const char *s = c->tokens->strs[i];
        size_t n = c->tokens->str_lens[i];
        if (!tk_utf8_valid(s, n)) return hp_errf(c->e, "%s: tokenizer.ggml.tokens[%llu] is not valid UTF-8", c->path, (unsigned long long)i);
        if (bytelevel && !in_alphabet(t, s, n)) {
            char *r = malloc(n * 2 + 1);
            if (!r) return hp_errf(c->e, "%s: out of memory", c->path);
            size_t m = 0;
            for (size_t j = 0; j < n; j++) {
                uint8_t byte = (uint8_t)s[j];
                memcpy(r + m, t->bl_chr[byte], t->bl_len[byte]);
                m += t->bl_len[byte];
            }
            int rc = tk_set_piece(t, (int32_t)i, r, m, c->e);
            free(r);
            if (rc) return -1;
        } else if (tk_set_piece(t, (int32_t)i, s, n, c->e)) {
            return -1;
        }
    }

    if (c->merges) {
        for (uint64_t i = 0; i < c->merges->n; i++) {
            const char *m = c->merges->strs[i];
            size_t n = c->merges->str_lens[i];
            const char *sp = memchr(m, ' ', n);
            char where[64];
            snprintf(where, sizeof where, "tokenizer.ggml.merges[%llu]", (unsigned long long)i);
            if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - m)))
                return hp_errf(c->e, "%s: %s: expected \"left right\"", c->path, where);
            if (tk_add_merge(t, m, (size_t)(sp - m), sp + 1, n - (size_t)(sp + 1 - m), where, c->e)) return -1;
        }
    } else if (merges_from_scores(c)) {
        return -1;
    }

    /* added tokens: control -> special, user-defined -> plain (only if in the vocabulary) */
    for (uint64_t i = 0; i < c->n; i++) {
        const char *s = c->tokens->strs[i];
        size_t n = c->tokens->str_lens[i];
        int tt = token_type(c, i);
        if (tt == TT_CONTROL && (!bytelevel || in_alphabet(t, s, n))) {
            if (tk_add_added(t, s, n, tk_vocab_get(t, s, n), 1, 0, 0, 0, 0, c->e)) return -1;
        }
    }
    for (uint64_t i = 0; i < c->n; i++) {
        const char *s = c->tokens->strs[i];
        size_t n = c->tokens->str_lens[i];
        int32_t vid = tk_vocab_get(t, s, n);
        if (token_type(c, i) == TT_USER && vid >= 0 &&
            tk_add_added(t, s, n, vid, 0, 0, 0, 0, 0, c->e))
            return -1;
    }
    int32_t unk, pad;
    int add_bos, add_eos;
    if (opt_id(c, "tokenizer.ggml.bos_token_id", &t->bos) || opt_id(c, "tokenizer.ggml.eos_token_id", &t->eos) ||
        opt_id(c, "tokenizer.ggml.unknown_token_id", &unk) || opt_id(c, "tokenizer.ggml.padding_token_id", &pad) ||
        opt_bool(c, "tokenizer.ggml.add_bos_token", !bytelevel, &add_bos) ||
        opt_bool(c, "tokenizer.ggml.add_eos_token", 0, &add_eos))
        return -1;
    int32_t sp[4] = {t->bos, t->eos, unk, pad};
    for (int k = 0; k < 4; k++)
        if (add_special_by_id(c, sp[k])) return -1;
    if (add_bos && t->bos >= 0) {
        if (!(t->prefix = malloc(sizeof *t->prefix))) return hp_errf(c->e, "%s: out of memory", c->path);
        t->prefix[0] = t->bos;
        t->n_prefix = 1;
    }
    if (add_eos && t->eos >= 0) {
        if (!(t->suffix = malloc(sizeof *t->suffix))) return hp_errf(c->e, "%s: out of memory", c->path);
        t->suffix[0] = t->eos;
        t->n_suffix = 1;
    }

    if (bytelevel) {
        t->kind = HP_TOK_BYTELEVEL_BPE;
        if (bytelevel_pre(c) || add_dec(c, TK_DEC_BYTELEVEL, NULL, NULL)) return -1;
        return 0;
    }
    t->kind = HP_TOK_SPM_BPE;
    t->byte_fallback = 1;
    t->fuse_unk = 1;
    if (gemma3) {
        /* Gemma 3's tokenizer.json (and transformers' GGUF converter): spaces become U+2581 in
         * a normalizer, no prefix space (tokenizer.ggml.add_space_prefix false), no
         * pre-tokenizer; the decoder strips nothing */
        int asp;
        if (opt_bool(c, "tokenizer.ggml.add_space_prefix", 0, &asp)) return -1;
        if (asp)
            return hp_errf(c->e, "%s: gemma3 with tokenizer.ggml.add_space_prefix true is not supported", c->path);
        tk_norm *nm = calloc(1, sizeof *nm);
        if (!nm) return hp_errf(c->e, "%s: out of memory", c->path);
        t->norm = nm;
        t->n_norm = 1;
        nm[0].type = TK_NORM_REPLACE;
        if (!(nm[0].a = strdup(" ")) || !(nm[0].b = strdup("\xE2\x96\x81")))
            return hp_errf(c->e, "%s: out of memory", c->path);
        nm[0].alen = 1;
        nm[0].blen = 3;
        if (add_dec(c, TK_DEC_REPLACE, "\xE2\x96\x81", " ") || add_dec(c, TK_DEC_BYTEFALLBACK, NULL, NULL) ||
            add_dec(c, TK_DEC_FUSE, NULL, NULL))
            return -1;
        return 0;
    }
    if (arch && !strcmp(arch, "phi3")) {
        /* transformers' phi3_tokenizer: the prefix space comes from a normalizer */
        tk_norm *nm = calloc(2, sizeof *nm);
        if (!nm) return hp_errf(c->e, "%s: out of memory", c->path);
        t->norm = nm;
        t->n_norm = 2;
        nm[0].type = TK_NORM_PREPEND;
        nm[1].type = TK_NORM_REPLACE;
        if (!(nm[0].a = strdup("\xE2\x96\x81")) || !(nm[1].a = strdup(" ")) || !(nm[1].b = strdup("\xE2\x96\x81")))
            return hp_errf(c->e, "%s: out of memory", c->path);
        nm[0].alen = 3;
        nm[1].alen = 1;
        nm[1].blen = 3;
    } else {
        tk_pre *p = add_pre(c, TK_PRE_METASPACE);
        if (!p) return -1;
        memcpy(p->repl, "\xE2\x96\x81", 3);
        p->repl_len = 3;
        p->prepend_scheme = TK_PREPEND_FIRST;
    }
    if (add_dec(c, TK_DEC_REPLACE, "\xE2\x96\x81", " ") || add_dec(c, TK_DEC_BYTEFALLBACK, NULL, NULL) ||
        add_dec(c, TK_DEC_FUSE, NULL, NULL) || add_dec(c, TK_DEC_STRIP, NULL, NULL))
        return -1;
    t->dec[t->n_dec - 1].strip_cp = ' ';
    t->dec[t->n_dec - 1].start = 1;
    return 0;
}

hp_tokenizer *hp_tok_from_gguf(const struct hp_gguf *g, hp_err *e) {
    if (!g) {
        hp_errf(e, "hp_tok_from_gguf: no GGUF metadata");
        return NULL;
    }
    const char *path = g->path ? g->path : "(gguf)";
    hp_tokenizer *t = tk_new(path, e);
    if (!t) return NULL;
    gctx c = {t, g, path, e, NULL, NULL, NULL, NULL, 0};
    if (load(&c) || tk_finish(t, e)) {
        hp_tok_free(t);
        return NULL;
    }
    return t;
}
