/* toxicity.h: a trained toxicity (profanity) classifier run in C: the alt-profanity-check 1.9.1
 * model (scikit-learn TfidfVectorizer + CalibratedClassifierCV of sigmoid-calibrated LinearSVC
 * folds), exported once by scripts/export_toxicity_model.py into data/toxicity/profanity_check.bin.
 *
 * hp_toxclf_prob reproduces the package's predict_prob:
 *   1. text = str.lower(text) (full Unicode lowercase incl. the Greek final sigma, from tables
 *      in the file),
 *   2. tokens = re.findall(r"(?u)\b\w\w+\b", text): maximal runs of at least two \w code points
 *      (the \w table in the file is Python's),
 *   3. x[j] = count(term j) * idf[j], x /= ||x||_2 (x = 0 when no term is in the vocabulary;
 *      stop words are never in the vocabulary, so dropping unknown tokens drops them),
 *   4. p = mean over folds k of 1 / (1 + exp(a_k * (coef_k . x + intercept_k) + b_k)).
 * Input is UTF-8; a byte that is not part of a valid sequence counts as U+FFFD (a non-word
 * character), as Python's errors="replace" decoding would give. */
#ifndef HP_TOXICITY_H
#define HP_TOXICITY_H

#include "common.h"

typedef struct hp_toxclf {
    char *source; /* what was exported: package, scikit-learn and Python versions */
    int V;        /* vocabulary size */
    int K;        /* calibrated folds */
    char **terms; /* [V] UTF-8 term of column j */
    float *idf;   /* [V] */
    float *coef;  /* [K, V] LinearSVC weights of each fold */
    double *intercept, *sig_a, *sig_b; /* [K] */
    uint32_t *slots;  /* [n_slots] open-addressing table of column + 1 (0 = empty) */
    size_t n_slots;   /* a power of two */
    uint32_t *word;   /* [n_word, 2] inclusive code-point ranges of \w, ascending */
    int n_word;
    uint32_t *lower;  /* [n_lower, 4] (code point, count, out0, out1), ascending code point */
    int n_lower;
    uint32_t *ignorable; /* [n_ignorable, 2] case-ignorable ranges (final-sigma context) */
    int n_ignorable;
    uint32_t *cased;     /* [n_cased, 2] cased ranges (of characters that are not ignorable) */
    int n_cased;
} hp_toxclf;

/* Reads and checks the exported file (magic, sizes, crc32, sorted tables, finite weights,
 * distinct terms); errors name the file and the byte offset. */
int hp_toxclf_load(const char *path, hp_toxclf *c, hp_err *e);
void hp_toxclf_free(hp_toxclf *c);

/* The probability that text (n bytes of UTF-8) is toxic. Fails only when out of memory. */
int hp_toxclf_prob(const hp_toxclf *c, const char *text, size_t n, double *prob, hp_err *e);

/* The vocabulary terms text contains: on return (*cols)[i] occurs (*counts)[i] times,
 * columns ascending; free both. For --tokens and tests. */
int hp_toxclf_terms(const hp_toxclf *c, const char *text, size_t n, int **cols, int **counts,
                    int *n_terms, hp_err *e);

/* The lexical metric (PAPER.md Table 8): whole-word occurrences in text of the n words or phrases
 * (matched ASCII-case-insensitively: an occurrence neither starts after nor ends before an ASCII
 * letter or digit, or a non-ASCII byte). *n_words (may be NULL) gets the number of words of text
 * (maximal runs of ASCII letters, digits and non-ASCII bytes), the denominator of a frequency. */
long hp_lexicon_count(const char *const *words, int n, const char *text, long *n_words);

/* The default file: data/toxicity/profanity_check.bin beside the running executable (the
 * repository root for ./headpursuit), written into out. */
int hp_toxclf_default_path(char *out, size_t cap);

#endif
