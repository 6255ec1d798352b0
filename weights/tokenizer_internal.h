/* tokenizer_internal.h: the tokenizer's private structures, shared by tokenizer.c (encode /
 * decode), tokenizer_json.c (tokenizer.json loader) and tokenizer_gguf.c (GGUF metadata loader).
 * Both loaders fill the same hp_tokenizer through the builder functions declared here, so the
 * encoder never knows where a tokenizer came from. Not part of the public interface. */
#ifndef HP_TOKENIZER_INTERNAL_H
#define HP_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"

/* Largest token id accepted: real vocabularies stay below 2^18; the bound keeps a corrupt file
 * from asking for gigabytes of id tables. */
#define TK_MAX_ID ((1 << 24) - 1)

/* Every string the tokenizer owns (vocabulary pieces, added-token contents) lives in one
 * growable pool and is referred to by offset, so that growing the pool never invalidates a
 * reference. Strings may hold NUL bytes (GGUF vocabularies can). */
typedef struct tk_pool {
    char *p;
    size_t n, cap;
} tk_pool;

typedef struct tk_sref {
    uint32_t off, len;
} tk_sref;

/* Open-addressing hash map from a pooled string to an int32 value. */
typedef struct tk_sm_entry {
    uint32_t off, len, hash;
    int32_t val; /* -1: empty slot */
} tk_sm_entry;
typedef struct tk_strmap {
    tk_sm_entry *e;
    size_t cap, n;
} tk_strmap;

/* Merge table: (left id, right id) -> (rank, merged id). */
typedef struct tk_pm_entry {
    uint64_t key;
    int32_t rank; /* -1: empty slot */
    int32_t new_id;
} tk_pm_entry;
typedef struct tk_pairmap {
    tk_pm_entry *e;
    size_t cap, n;
} tk_pairmap;

typedef struct tk_added {
    tk_sref content;  /* as written in the vocabulary */
    tk_sref pattern;  /* what is searched for: content, or content run through the normalizer */
    int32_t id;
    uint8_t special, lstrip, rstrip, single_word, normalized;
} tk_added;

/* Byte trie over added-token patterns for leftmost-longest matching. */
typedef struct tk_trie_node {
    int32_t child, sibling; /* first child, next sibling (-1: none) */
    int32_t added;          /* index into t->added whose pattern ends here, -1 if none */
    uint8_t byte;
} tk_trie_node;
typedef struct tk_trie {
    tk_trie_node *node; /* node[0] is the root */
    int32_t n, cap;
    int32_t root[256];  /* children of the root by first byte (-1: none) */
} tk_trie;

enum { TK_NORM_PREPEND, TK_NORM_REPLACE, TK_NORM_STRIP };
typedef struct tk_norm {
    int type;
    char *a, *b;       /* PREPEND: a; REPLACE: pattern a (when re is NULL) -> content b */
    size_t alen, blen;
    pcre2_code *re;    /* REPLACE with a Regex pattern */
    int left, right;   /* STRIP */
} tk_norm;

/* Split behaviours, as HF's SplitDelimiterBehavior. */
enum { TK_REMOVED, TK_ISOLATED, TK_MERGED_PREV, TK_MERGED_NEXT, TK_CONTIGUOUS };
enum { TK_PREPEND_NEVER, TK_PREPEND_FIRST, TK_PREPEND_ALWAYS };
enum { TK_PRE_METASPACE, TK_PRE_BYTELEVEL, TK_PRE_SPLIT, TK_PRE_DIGITS };
typedef struct tk_pre {
    int type;
    char repl[8];        /* METASPACE replacement character (UTF-8) */
    size_t repl_len;
    int prepend_scheme;  /* METASPACE */
    int split;           /* METASPACE: split on the replacement */
    int add_prefix_space;/* BYTELEVEL */
    pcre2_code *re;      /* BYTELEVEL (use_regex), SPLIT, DIGITS; NULL: no split */
    int behavior, invert;/* SPLIT, DIGITS */
} tk_pre;

enum { TK_DEC_REPLACE, TK_DEC_BYTEFALLBACK, TK_DEC_FUSE, TK_DEC_STRIP, TK_DEC_METASPACE,
       TK_DEC_BYTELEVEL };
typedef struct tk_dec {
    int type;
    char *a, *b;         /* REPLACE: pattern a (or re) -> b */
    size_t alen, blen;
    pcre2_code *re;
    uint32_t strip_cp;   /* STRIP: the code point removed */
    int start, stop;     /* STRIP */
    uint32_t repl_cp;    /* METASPACE replacement code point */
    int prepend;         /* METASPACE: prepend_scheme != never */
} tk_dec;

struct hp_tokenizer {
    hp_tok_kind kind;
    char *path;            /* for messages */
    tk_pool pool;

    /* vocabulary: id -> piece (len == UINT32_MAX marks an id with no piece) */
    tk_sref *piece;
    int32_t n_ids, cap_ids;
    tk_strmap vocab;       /* model vocabulary: piece -> id */
    tk_pairmap merges;
    int32_t n_merges;

    /* BPE options (HF names) */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;        /* -1: no unk_token */
    char *cont_prefix, *eow_suffix; /* continuing_subword_prefix / end_of_word_suffix, or NULL */
    size_t cont_prefix_len, eow_suffix_len;
    int32_t byte_tok[256]; /* <0xNN> ids, -1 if absent */

    /* added tokens */
    tk_added *added;
    int n_added, cap_added;
    tk_strmap added_map;   /* content -> index into added */
    tk_trie trie_raw;      /* non-normalized tokens, matched in the raw text */
    tk_trie trie_norm;     /* normalized tokens, matched in normalized text */
    uint8_t *special;      /* per id: its string is a special added token's content */
    int32_t *added_of_id;  /* per id: index into added, or -1 */

    tk_norm *norm;
    int n_norm;
    tk_pre *pre;
    int n_pre;
    tk_dec *dec;
    int n_dec;
    int has_decoder;       /* 0: tokens are joined with " " as HF does without a decoder */

    int32_t *prefix, *suffix; /* post-processor ids around the sequence */
    int n_prefix, n_suffix;

    int32_t bos, eos;
    int adds_bos;

    pcre2_code *re_word;   /* \w, for single_word added tokens */

    /* GPT-2 byte-level alphabet: byte -> its character's UTF-8, character -> byte */
    char bl_chr[256][2];
    uint8_t bl_len[256];
    int16_t bl_byte[256 + 68];
};

/* ---- builders (tokenizer.c) ---- */
hp_tokenizer *tk_new(const char *path, hp_err *e);
/* Interns a string in the pool; returns -1 on allocation failure. */
int tk_intern(hp_tokenizer *t, const char *s, size_t len, tk_sref *out);
/* Sets the piece of id (growing the id space) and maps piece -> id in the model vocabulary
 * (a later id for the same piece wins, as a Python dict or serde map does). */
int tk_set_piece(hp_tokenizer *t, int32_t id, const char *s, size_t len, hp_err *e);
/* Looks up a model-vocabulary piece; -1 if absent. */
int32_t tk_vocab_get(const hp_tokenizer *t, const char *s, size_t len);
/* Adds the merge (a, b) with the next rank. Fails (message names where) when a, b or a+b is not
 * in the vocabulary, as HF does. */
int tk_add_merge(hp_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                 const char *where, hp_err *e);
/* Registers an added token (id must already be its id). A later token with the same content
 * replaces the earlier one. */
int tk_add_added(hp_tokenizer *t, const char *s, size_t len, int32_t id, int special, int lstrip,
                 int rstrip, int single_word, int normalized, hp_err *e);
/* Compiles a pattern with PCRE2_UTF|PCRE2_UCP (literal: PCRE2_LITERAL); NULL + message on error. */
pcre2_code *tk_compile(const hp_tokenizer *t, const char *pat, size_t len, int literal,
                       const char *where, hp_err *e);
/* After the loader filled everything: byte tokens, tries, per-id tables, BOS detection. */
int tk_finish(hp_tokenizer *t, hp_err *e);

/* ---- helpers ---- */
/* String map over pooled keys: put replaces an existing value; get returns -1 if absent. */
int tk_sm_put(const tk_pool *pool, tk_strmap *m, tk_sref ref, int32_t val);
int32_t tk_sm_get(const tk_pool *pool, const tk_strmap *m, const char *s, size_t len);
/* 1 if s[0..n) is well-formed UTF-8 (no surrogates, overlongs or values past U+10FFFF). */
int tk_utf8_valid(const char *s, size_t n);
size_t tk_utf8_valid_prefix(const char *s, size_t n); /* length of the longest valid prefix */
/* Decodes one UTF-8 scalar at s[0..n) (valid input assumed); returns its length (>= 1). */
int tk_utf8_next(const char *s, size_t n, uint32_t *cp);
int tk_utf8_put(char *out, uint32_t cp); /* writes 1..4 bytes */
/* The GPT-2 byte <-> unicode tables. */
uint32_t tk_byte_to_cp(uint8_t b);
int tk_cp_to_byte(const hp_tokenizer *t, uint32_t cp); /* -1 if cp is not in the alphabet */
/* The GPT-2 pattern ByteLevel(use_regex=true) splits with. */
extern const char tk_gpt2_pattern[];
extern const char tk_llama3_pattern[];

#endif
