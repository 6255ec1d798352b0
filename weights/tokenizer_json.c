/* tokenizer_json.c: loads a Hugging Face tokenizer.json (BPE model) into an hp_tokenizer:
 * vocabulary, merges ("a b" strings or [a, b] pairs), added tokens, normalizer, pre-tokenizer,
 * post-processor and decoder. Components outside the two families headpursuit runs
 * (SentencePiece-style BPE, GPT-2 byte-level BPE) are refused with a message naming the JSON
 * path, rather than silently encoding differently from HF. BOS/EOS come from a
 * tokenizer_config.json beside the file when there is one, as transformers reads them.
 * cJSON ends strings at NUL, so a "\u0000" inside a token is not representable (no real
 * vocabulary has one; GGUF vocabularies, which can, keep their lengths). */
#include "tokenizer_internal.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"

typedef struct jctx {
    hp_tokenizer *t;
    const char *path;
    hp_err *e;
} jctx;

static int jerr_oom(jctx *c) { return hp_errf(c->e, "%s: out of memory", c->path); }

/* Optional boolean: absent or null gives def; anything else but a bool is an error. */
static int jbool(jctx *c, const cJSON *o, const char *key, const char *where, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return hp_errf(c->e, "%s: %s.%s: expected a boolean", c->path, where, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Optional string: absent or null gives NULL. */
static int jstr(jctx *c, const cJSON *o, const char *key, const char *where, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return hp_errf(c->e, "%s: %s.%s: expected a string", c->path, where, key);
    *out = v->valuestring;
    return 0;
}

/* Required integer in [lo, hi]. */
static int jint(jctx *c, const cJSON *v, const char *where, double lo, double hi, int64_t *out) {
    if (!v || !cJSON_IsNumber(v)) return hp_errf(c->e, "%s: %s: expected an integer", c->path, where);
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return hp_errf(c->e, "%s: %s: integer %g out of range [%.0f, %.0f]", c->path, where, d, lo, hi);
    *out = (int64_t)d;
    return 0;
}

static const char *jtype(jctx *c, const cJSON *o, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(v) || !v->valuestring) {
        hp_errf(c->e, "%s: %s.type: expected a string", c->path, where);
        return NULL;
    }
    return v->valuestring;
}

/* A single-character string (Rust char fields such as Metaspace.replacement). */
static int jchar(jctx *c, const cJSON *o, const char *key, const char *where, const char *def,
                 uint32_t *cp, char *utf8, size_t *len) {
    const char *s;
    if (jstr(c, o, key, where, &s)) return -1;
    if (!s) s = def;
    size_t n = strlen(s);
    if (n == 0 || n > 4) return hp_errf(c->e, "%s: %s.%s: expected one character", c->path, where, key);
    int k = tk_utf8_next(s, n, cp);
    if ((size_t)k != n) return hp_errf(c->e, "%s: %s.%s: expected one character", c->path, where, key);
    if (utf8) memcpy(utf8, s, n);
    if (len) *len = n;
    return 0;
}

/* {"String": s} or {"Regex": r}: literal pattern copied to *lit, or a compiled regex. */
static int jpattern(jctx *c, const cJSON *o, const char *where, char **lit, size_t *litlen, pcre2_code **re) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    char w[160];
    snprintf(w, sizeof w, "%s.pattern", where);
    *lit = NULL;
    *litlen = 0;
    *re = NULL;
    if (!cJSON_IsObject(p)) return hp_errf(c->e, "%s: %s: expected {\"String\": ...} or {\"Regex\": ...}", c->path, w);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "String");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(p, "Regex");
    if (cJSON_IsString(s) && s->valuestring) {
        *litlen = strlen(s->valuestring);
        if (!(*lit = strdup(s->valuestring))) return jerr_oom(c);
        return 0;
    }
    if (cJSON_IsString(r) && r->valuestring) {
        *re = tk_compile(c->t, r->valuestring, strlen(r->valuestring), 0, w, c->e);
        return *re ? 0 : -1;
    }
    return hp_errf(c->e, "%s: %s: expected {\"String\": ...} or {\"Regex\": ...}", c->path, w);
}

static int prepend_scheme(jctx *c, const cJSON *o, const char *where, int *out) {
    const char *ps;
    if (jstr(c, o, "prepend_scheme", where, &ps)) return -1;
    if (ps) {
        if (!strcmp(ps, "first")) *out = TK_PREPEND_FIRST;
        else if (!strcmp(ps, "always")) *out = TK_PREPEND_ALWAYS;
        else if (!strcmp(ps, "never")) *out = TK_PREPEND_NEVER;
        else return hp_errf(c->e, "%s: %s.prepend_scheme: unknown value \"%s\"", c->path, where, ps);
        return 0;
    }
    int aps; /* files before prepend_scheme existed say add_prefix_space */
    if (jbool(c, o, "add_prefix_space", where, 1, &aps)) return -1;
    *out = aps ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
    return 0;
}

/* ---- normalizer ---- */

static tk_norm *new_norm(jctx *c) {
    hp_tokenizer *t = c->t;
    tk_norm *n = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *n);
    if (!n) return NULL;
    t->norm = n;
    memset(&n[t->n_norm], 0, sizeof *n);
    return &n[t->n_norm++];
}

static int parse_normalizer(jctx *c, const cJSON *o, const char *where, int depth) {
    if (!o || cJSON_IsNull(o)) return 0;
    if (!cJSON_IsObject(o)) return hp_errf(c->e, "%s: %s: expected an object or null", c->path, where);
    if (depth > 8) return hp_errf(c->e, "%s: %s: nested too deeply", c->path, where);
    const char *type = jtype(c, o, where);
    if (!type) return -1;
    char w[160];
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
        if (!cJSON_IsArray(arr)) return hp_errf(c->e, "%s: %s.normalizers: expected an array", c->path, where);
        int i = 0;
        for (const cJSON *x = arr->child; x; x = x->next, i++) {
            snprintf(w, sizeof w, "%s.normalizers[%d]", where, i);
            if (parse_normalizer(c, x, w, depth + 1)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        const char *s;
        if (jstr(c, o, "prepend", where, &s)) return -1;
        if (!s) return hp_errf(c->e, "%s: %s.prepend: expected a string", c->path, where);
        tk_norm *n = new_norm(c);
        if (!n || !(n->a = strdup(s))) return jerr_oom(c);
        n->type = TK_NORM_PREPEND;
        n->alen = strlen(s);
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        const char *content;
        if (jstr(c, o, "content", where, &content)) return -1;
        if (!content) return hp_errf(c->e, "%s: %s.content: expected a string", c->path, where);
        tk_norm *n = new_norm(c);
        if (!n) return jerr_oom(c);
        n->type = TK_NORM_REPLACE;
        if (jpattern(c, o, where, &n->a, &n->alen, &n->re)) return -1;
        if (!(n->b = strdup(content))) return jerr_oom(c);
        n->blen = strlen(content);
        return 0;
    }
    if (!strcmp(type, "Strip")) {
        int l, r;
        if (jbool(c, o, "strip_left", where, 1, &l) || jbool(c, o, "strip_right", where, 1, &r)) return -1;
        tk_norm *n = new_norm(c);
        if (!n) return jerr_oom(c);
        n->type = TK_NORM_STRIP;
        n->left = l;
        n->right = r;
        return 0;
    }
    return hp_errf(c->e, "%s: %s: normalizer \"%s\" is not supported (Sequence, Prepend, Replace, Strip)",
                   c->path, where, type);
}

/* ---- pre-tokenizer ---- */

static tk_pre *new_pre(jctx *c) {
    hp_tokenizer *t = c->t;
    tk_pre *p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
    if (!p) return NULL;
    t->pre = p;
    memset(&p[t->n_pre], 0, sizeof *p);
    return &p[t->n_pre++];
}

static int parse_behavior(jctx *c, const cJSON *o, const char *where, int *out) {
    const char *b;
    if (jstr(c, o, "behavior", where, &b)) return -1;
    if (!b) return hp_errf(c->e, "%s: %s.behavior: expected a string", c->path, where);
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(b, names[i])) {
            *out = i; /* same order as TK_REMOVED .. TK_CONTIGUOUS */
            return 0;
        }
    return hp_errf(c->e, "%s: %s.behavior: unknown value \"%s\"", c->path, where, b);
}

static int parse_pre(jctx *c, const cJSON *o, const char *where, int depth) {
    if (!o || cJSON_IsNull(o)) return 0;
    if (!cJSON_IsObject(o)) return hp_errf(c->e, "%s: %s: expected an object or null", c->path, where);
    if (depth > 8) return hp_errf(c->e, "%s: %s: nested too deeply", c->path, where);
    const char *type = jtype(c, o, where);
    if (!type) return -1;
    char w[160];
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
        if (!cJSON_IsArray(arr)) return hp_errf(c->e, "%s: %s.pretokenizers: expected an array", c->path, where);
        int i = 0;
        for (const cJSON *x = arr->child; x; x = x->next, i++) {
            snprintf(w, sizeof w, "%s.pretokenizers[%d]", where, i);
            if (parse_pre(c, x, w, depth + 1)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Metaspace")) {
        tk_pre *p = new_pre(c);
        if (!p) return jerr_oom(c);
        uint32_t cp;
        p->type = TK_PRE_METASPACE;
        if (jchar(c, o, "replacement", where, "\xE2\x96\x81", &cp, p->repl, &p->repl_len) ||
            prepend_scheme(c, o, where, &p->prepend_scheme) || jbool(c, o, "split", where, 1, &p->split))
            return -1;
        if (p->split && !(p->re = tk_compile(c->t, p->repl, p->repl_len, 1, where, c->e))) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        tk_pre *p = new_pre(c);
        if (!p) return jerr_oom(c);
        int use_regex;
        p->type = TK_PRE_BYTELEVEL;
        if (jbool(c, o, "add_prefix_space", where, 1, &p->add_prefix_space) ||
            jbool(c, o, "use_regex", where, 1, &use_regex))
            return -1;
        if (use_regex && !(p->re = tk_compile(c->t, tk_gpt2_pattern, PCRE2_ZERO_TERMINATED, 0, where, c->e)))
            return -1;
        c->t->kind = HP_TOK_BYTELEVEL_BPE;
        return 0;
    }
    if (!strcmp(type, "Split")) {
        tk_pre *p = new_pre(c);
        if (!p) return jerr_oom(c);
        char *lit = NULL;
        size_t litlen = 0;
        p->type = TK_PRE_SPLIT;
        if (jpattern(c, o, where, &lit, &litlen, &p->re)) return -1;
        if (lit) {
            if (litlen && !(p->re = tk_compile(c->t, lit, litlen, 1, where, c->e))) {
                free(lit);
                return -1;
            }
            free(lit);
        }
        if (parse_behavior(c, o, where, &p->behavior) || jbool(c, o, "invert", where, 0, &p->invert)) return -1;
        return 0;
    }
    if (!strcmp(type, "Digits")) {
        tk_pre *p = new_pre(c);
        if (!p) return jerr_oom(c);
        int individual;
        p->type = TK_PRE_DIGITS;
        if (jbool(c, o, "individual_digits", where, 0, &individual)) return -1;
        /* Rust's char::is_numeric is the N categories; one match per digit, as HF's char pattern */
        if (!(p->re = tk_compile(c->t, "\\p{N}", PCRE2_ZERO_TERMINATED, 0, where, c->e))) return -1;
        p->behavior = individual ? TK_ISOLATED : TK_CONTIGUOUS;
        return 0;
    }
    return hp_errf(c->e, "%s: %s: pre-tokenizer \"%s\" is not supported (Sequence, Metaspace, ByteLevel, Split, Digits)",
                   c->path, where, type);
}

/* ---- post-processor ---- */

static int push_ids(jctx *c, int32_t **arr, int *n, const int32_t *ids, int k, int front) {
    int32_t *p = realloc(*arr, (size_t)(*n + k + 1) * sizeof *p);
    if (!p) return jerr_oom(c);
    *arr = p;
    if (front) {
        memmove(p + k, p, (size_t)*n * sizeof *p);
        memcpy(p, ids, (size_t)k * sizeof *p);
    } else {
        memcpy(p + *n, ids, (size_t)k * sizeof *p);
    }
    *n += k;
    return 0;
}

/* One post-processor wraps the sequence in its own prefix and suffix; a Sequence of them wraps
 * the result of the previous one, so later prefixes go in front. */
static int parse_post(jctx *c, const cJSON *o, const char *where, int depth) {
    if (!o || cJSON_IsNull(o)) return 0;
    if (!cJSON_IsObject(o)) return hp_errf(c->e, "%s: %s: expected an object or null", c->path, where);
    if (depth > 8) return hp_errf(c->e, "%s: %s: nested too deeply", c->path, where);
    const char *type = jtype(c, o, where);
    if (!type) return -1;
    hp_tokenizer *t = c->t;
    char w[200];
    if (!strcmp(type, "ByteLevel")) return 0; /* offsets only */
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "processors");
        if (!cJSON_IsArray(arr)) return hp_errf(c->e, "%s: %s.processors: expected an array", c->path, where);
        int i = 0;
        for (const cJSON *x = arr->child; x; x = x->next, i++) {
            snprintf(w, sizeof w, "%s.processors[%d]", where, i);
            if (parse_post(c, x, w, depth + 1)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int32_t ids[2];
        const char *keys[2] = {"cls", "sep"};
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
            int64_t id;
            snprintf(w, sizeof w, "%s.%s[1]", where, keys[k]);
            if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2) return hp_errf(c->e, "%s: %s.%s: expected [token, id]", c->path, where, keys[k]);
            if (jint(c, cJSON_GetArrayItem(v, 1), w, 0, TK_MAX_ID, &id)) return -1;
            ids[k] = (int32_t)id;
        }
        return push_ids(c, &t->prefix, &t->n_prefix, &ids[0], 1, 1) || push_ids(c, &t->suffix, &t->n_suffix, &ids[1], 1, 0);
    }
    if (!strcmp(type, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(o, "single");
        const cJSON *specials = cJSON_GetObjectItemCaseSensitive(o, "special_tokens");
        if (!cJSON_IsArray(single)) return hp_errf(c->e, "%s: %s.single: expected an array", c->path, where);
        int32_t *pre = NULL, *suf = NULL;
        int npre = 0, nsuf = 0, seen_a = 0, i = 0, rc = 0;
        for (const cJSON *x = single->child; x && !rc; x = x->next, i++) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(x, "SpecialToken");
            const cJSON *sq = cJSON_GetObjectItemCaseSensitive(x, "Sequence");
            snprintf(w, sizeof w, "%s.single[%d]", where, i);
            if (sq) {
                seen_a = 1;
                continue;
            }
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(st, "id");
            if (!cJSON_IsString(name) || !name->valuestring) {
                rc = hp_errf(c->e, "%s: %s: expected {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": ...}", c->path, w);
                break;
            }
            const cJSON *def = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
            if (!cJSON_IsArray(ids)) {
                rc = hp_errf(c->e, "%s: %s.special_tokens: no ids for \"%s\"", c->path, where, name->valuestring);
                break;
            }
            int j = 0;
            for (const cJSON *y = ids->child; y && !rc; y = y->next, j++) {
                int64_t id;
                char w2[260];
                snprintf(w2, sizeof w2, "%s.special_tokens[\"%.40s\"].ids[%d]", where, name->valuestring, j);
                if (jint(c, y, w2, 0, TK_MAX_ID, &id)) rc = -1;
                else {
                    int32_t v = (int32_t)id;
                    rc = seen_a ? push_ids(c, &suf, &nsuf, &v, 1, 0) : push_ids(c, &pre, &npre, &v, 1, 0);
                }
            }
        }
        if (!rc && !seen_a) rc = hp_errf(c->e, "%s: %s.single: no {\"Sequence\": {\"id\": \"A\"}}", c->path, where);
        if (!rc && npre) rc = push_ids(c, &t->prefix, &t->n_prefix, pre, npre, 1);
        if (!rc && nsuf) rc = push_ids(c, &t->suffix, &t->n_suffix, suf, nsuf, 0);
        free(pre);
        free(suf);
        return rc;
    }
    return hp_errf(c->e, "%s: %s: post-processor \"%s\" is not supported (TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)",
                   c->path, where, type);
}

/* ---- decoder ---- */

static tk_dec *new_dec(jctx *c) {
    hp_tokenizer *t = c->t;
    tk_dec *d = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *d);
    if (!d) return NULL;
    t->dec = d;
    memset(&d[t->n_dec], 0, sizeof *d);
    return &d[t->n_dec++];
}

static int parse_decoder(jctx *c, const cJSON *o, const char *where, int depth) {
    if (!o || cJSON_IsNull(o)) return 0;
    if (!cJSON_IsObject(o)) return hp_errf(c->e, "%s: %s: expected an object or null", c->path, where);
    if (depth > 8) return hp_errf(c->e, "%s: %s: nested too deeply", c->path, where);
    const char *type = jtype(c, o, where);
    if (!type) return -1;
    c->t->has_decoder = 1;
    char w[160];
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "decoders");
        if (!cJSON_IsArray(arr)) return hp_errf(c->e, "%s: %s.decoders: expected an array", c->path, where);
        int i = 0;
        for (const cJSON *x = arr->child; x; x = x->next, i++) {
            snprintf(w, sizeof w, "%s.decoders[%d]", where, i);
            if (parse_decoder(c, x, w, depth + 1)) return -1;
        }
        return 0;
    }
    tk_dec *d = new_dec(c);
    if (!d) return jerr_oom(c);
    if (!strcmp(type, "Replace")) {
        const char *content;
        d->type = TK_DEC_REPLACE;
        if (jpattern(c, o, where, &d->a, &d->alen, &d->re) || jstr(c, o, "content", where, &content)) return -1;
        if (!content) return hp_errf(c->e, "%s: %s.content: expected a string", c->path, where);
        if (!(d->b = strdup(content))) return jerr_oom(c);
        d->blen = strlen(content);
        return 0;
    }
    if (!strcmp(type, "ByteFallback")) {
        d->type = TK_DEC_BYTEFALLBACK;
        return 0;
    }
    if (!strcmp(type, "Fuse")) {
        d->type = TK_DEC_FUSE;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        d->type = TK_DEC_BYTELEVEL;
        c->t->kind = HP_TOK_BYTELEVEL_BPE;
        return 0;
    }
    if (!strcmp(type, "Strip")) {
        int64_t start, stop;
        d->type = TK_DEC_STRIP;
        snprintf(w, sizeof w, "%s.start", where);
        if (jchar(c, o, "content", where, " ", &d->strip_cp, NULL, NULL) ||
            jint(c, cJSON_GetObjectItemCaseSensitive(o, "start"), w, 0, 1 << 20, &start))
            return -1;
        snprintf(w, sizeof w, "%s.stop", where);
        if (jint(c, cJSON_GetObjectItemCaseSensitive(o, "stop"), w, 0, 1 << 20, &stop)) return -1;
        d->start = (int)start;
        d->stop = (int)stop;
        return 0;
    }
    if (!strcmp(type, "Metaspace")) {
        int scheme;
        d->type = TK_DEC_METASPACE;
        if (jchar(c, o, "replacement", where, "\xE2\x96\x81", &d->repl_cp, NULL, NULL) ||
            prepend_scheme(c, o, where, &scheme))
            return -1;
        d->prepend = scheme != TK_PREPEND_NEVER;
        return 0;
    }
    return hp_errf(c->e, "%s: %s: decoder \"%s\" is not supported (Sequence, Replace, ByteFallback, Fuse, Strip, Metaspace, ByteLevel)",
                   c->path, where, type);
}

/* ---- model ---- */

static int parse_model(jctx *c, const cJSON *m) {
    hp_tokenizer *t = c->t;
    if (!cJSON_IsObject(m)) return hp_errf(c->e, "%s: model: expected an object", c->path);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(m, "type");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    if (ty && !cJSON_IsString(ty)) return hp_errf(c->e, "%s: model.type: expected a string", c->path);
    if (ty && strcmp(ty->valuestring, "BPE"))
        return hp_errf(c->e, "%s: model.type \"%s\" is not supported (only BPE)", c->path, ty->valuestring);
    if (!ty && !merges) return hp_errf(c->e, "%s: model: no type and no merges; only BPE is supported", c->path);

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(vocab)) return hp_errf(c->e, "%s: model.vocab: expected an object", c->path);
    for (const cJSON *v = vocab->child; v; v = v->next) {
        int64_t id;
        char w[120];
        snprintf(w, sizeof w, "model.vocab[\"%.60s\"]", v->string ? v->string : "");
        if (!v->string) return hp_errf(c->e, "%s: model.vocab: entry without a key", c->path);
        if (jint(c, v, w, 0, TK_MAX_ID, &id)) return -1;
        if (tk_set_piece(t, (int32_t)id, v->string, strlen(v->string), c->e)) return -1;
    }

    const char *s;
    int b;
    if (jbool(c, m, "byte_fallback", "model", 0, &b)) return -1;
    t->byte_fallback = b;
    if (jbool(c, m, "fuse_unk", "model", 0, &b)) return -1;
    t->fuse_unk = b;
    if (jbool(c, m, "ignore_merges", "model", 0, &b)) return -1;
    t->ignore_merges = b;
    if (jstr(c, m, "unk_token", "model", &s)) return -1;
    /* an unk_token missing from the vocabulary makes HF fail only when it is needed; here the
     * unknown character is dropped instead */
    if (s) t->unk_id = tk_vocab_get(t, s, strlen(s));
    if (jstr(c, m, "continuing_subword_prefix", "model", &s)) return -1;
    if (s && *s) {
        if (!(t->cont_prefix = strdup(s))) return jerr_oom(c);
        t->cont_prefix_len = strlen(s);
    }
    if (jstr(c, m, "end_of_word_suffix", "model", &s)) return -1;
    if (s && *s) {
        if (!(t->eow_suffix = strdup(s))) return jerr_oom(c);
        t->eow_suffix_len = strlen(s);
    }
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !cJSON_IsNumber(dropout))
        return hp_errf(c->e, "%s: model.dropout: expected a number or null", c->path);
    /* a non-null dropout is ignored: encoding stays deterministic, as HF with dropout off */

    if (merges && !cJSON_IsNull(merges) && !cJSON_IsArray(merges))
        return hp_errf(c->e, "%s: model.merges: expected an array", c->path);
    int i = 0;
    for (const cJSON *x = merges ? merges->child : NULL; x; x = x->next, i++) {
        char w[64];
        snprintf(w, sizeof w, "model.merges[%d]", i);
        if (cJSON_IsString(x) && x->valuestring) {
            const char *sp = strchr(x->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ')) return hp_errf(c->e, "%s: %s: expected \"left right\"", c->path, w);
            if (tk_add_merge(t, x->valuestring, (size_t)(sp - x->valuestring), sp + 1, strlen(sp + 1), w, c->e)) return -1;
        } else if (cJSON_IsArray(x) && cJSON_GetArraySize(x) == 2 && cJSON_IsString(x->child) &&
                   cJSON_IsString(x->child->next) && x->child->valuestring && x->child->next->valuestring) {
            const char *l = x->child->valuestring, *r = x->child->next->valuestring;
            if (tk_add_merge(t, l, strlen(l), r, strlen(r), w, c->e)) return -1;
        } else {
            return hp_errf(c->e, "%s: %s: expected \"left right\" or [left, right]", c->path, w);
        }
    }
    return 0;
}

static int parse_added(jctx *c, const cJSON *arr) {
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr)) return hp_errf(c->e, "%s: added_tokens: expected an array", c->path);
    int i = 0;
    for (const cJSON *x = arr->child; x; x = x->next, i++) {
        char w[64];
        snprintf(w, sizeof w, "added_tokens[%d]", i);
        if (!cJSON_IsObject(x)) return hp_errf(c->e, "%s: %s: expected an object", c->path, w);
        int64_t id;
        const char *content;
        int special, lstrip, rstrip, single, normalized;
        char wid[80];
        snprintf(wid, sizeof wid, "%s.id", w);
        if (jint(c, cJSON_GetObjectItemCaseSensitive(x, "id"), wid, 0, TK_MAX_ID, &id) ||
            jstr(c, x, "content", w, &content) || jbool(c, x, "special", w, 0, &special) ||
            jbool(c, x, "lstrip", w, 0, &lstrip) || jbool(c, x, "rstrip", w, 0, &rstrip) ||
            jbool(c, x, "single_word", w, 0, &single) || jbool(c, x, "normalized", w, !special, &normalized))
            return -1;
        if (!content) return hp_errf(c->e, "%s: %s.content: expected a string", c->path, w);
        if (tk_add_added(c->t, content, strlen(content), (int32_t)id, special, lstrip, rstrip, single,
                         normalized, c->e))
            return -1;
    }
    return 0;
}

/* bos_token / eos_token of a tokenizer_config.json: a string or {"content": ...}. */
static int config_token(const hp_tokenizer *t, const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v) || !v->valuestring) return -1;
    return hp_tok_id(t, v->valuestring);
}

static int first_present(const hp_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int id = hp_tok_id(t, *names);
        if (id >= 0) return id;
    }
    return -1;
}

/* BOS/EOS as transformers would name them: tokenizer_config.json beside the file, else the
 * post-processor's first / last token, else a conventional name. */
static int find_bos_eos(jctx *c) {
    hp_tokenizer *t = c->t;
    char dir[4096], cfgpath[4200];
    snprintf(dir, sizeof dir, "%s", c->path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    snprintf(cfgpath, sizeof cfgpath, "%s/tokenizer_config.json", dir);
    int bos = -1, eos = -1;
    if (hp_file_exists(cfgpath)) {
        char *data;
        size_t len;
        if (hp_read_file(cfgpath, &data, &len, c->e)) return -1;
        cJSON *cfg = cJSON_ParseWithLength(data, len);
        free(data);
        if (!cJSON_IsObject(cfg)) {
            cJSON_Delete(cfg);
            return hp_errf(c->e, "%s: not a JSON object (read for the BOS/EOS of %s)", cfgpath, c->path);
        }
        bos = config_token(t, cfg, "bos_token");
        eos = config_token(t, cfg, "eos_token");
        cJSON_Delete(cfg);
    } else {
        static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>", NULL};
        static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", NULL};
        bos = t->n_prefix ? t->prefix[0] : first_present(t, bos_names);
        eos = t->n_suffix ? t->suffix[t->n_suffix - 1] : first_present(t, eos_names);
    }
    t->bos = bos;
    t->eos = eos;
    return 0;
}

hp_tokenizer *hp_tok_from_json(const char *path, hp_err *e) {
    char *data = NULL;
    size_t len = 0;
    if (!path) {
        hp_errf(e, "hp_tok_from_json: NULL path");
        return NULL;
    }
    if (hp_read_file(path, &data, &len, e)) return NULL;
    /* HF reads the file into a Rust String, so it must be UTF-8; checking it here also means
     * every string the encoder later matches or splits on is valid UTF-8 */
    size_t valid = tk_utf8_valid_prefix(data, len);
    if (valid != len) {
        hp_errf(e, "%s: not valid UTF-8 (byte offset %zu)", path, valid);
        free(data);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t off = ep && ep >= data && ep <= data + len ? (size_t)(ep - data) : len;
        hp_errf(e, "%s: not valid JSON (error near byte offset %zu)", path, off);
        free(data);
        return NULL;
    }
    free(data);
    hp_tokenizer *t = NULL;
    if (!cJSON_IsObject(root)) {
        hp_errf(e, "%s: top level is not a JSON object", path);
        goto fail;
    }
    if (!(t = tk_new(path, e))) goto fail;
    t->kind = HP_TOK_SPM_BPE;
    jctx c = {t, path, e};
    if (parse_model(&c, cJSON_GetObjectItemCaseSensitive(root, "model")) ||
        parse_added(&c, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) ||
        parse_normalizer(&c, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer", 0) ||
        parse_pre(&c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "pre_tokenizer", 0) ||
        parse_post(&c, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), "post_processor", 0) ||
        parse_decoder(&c, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "decoder", 0))
        goto fail;
    if (t->n_ids == 0) {
        hp_errf(e, "%s: model.vocab is empty", path);
        goto fail;
    }
    if (find_bos_eos(&c) || tk_finish(t, e)) goto fail;
    cJSON_Delete(root);
    return t;
fail:
    cJSON_Delete(root);
    hp_tok_free(t);
    return NULL;
}
