/* metrics.h: answer scoring for the QA experiment (SQuAD v1.1 exact match and token F1),
 * the country/other labelling of QA items, and the summary statistics the experiments report
 * (mean, median and interquartile range with numpy's default linear-interpolation percentile).
 *
 * Normalisation follows the official SQuAD v1.1 evaluate script: lower-case, drop ASCII
 * punctuation (Python's string.punctuation), drop the words a/an/the, collapse whitespace.
 * It works on bytes: only ASCII is lower-cased and bytes >= 0x80 count as word characters
 * and are kept as they are (Python's str.lower() and \b are Unicode-aware; for letters the
 * results agree, for non-ASCII case pairs and punctuation they differ). */
#ifndef HP_METRICS_H
#define HP_METRICS_H

#include <stddef.h>

#include "dataset.h"

/* Writes the normalised form of s into out, which must hold strlen(s) + 1 bytes (the result is
 * never longer than the input). Returns the length written. */
size_t hp_squad_normalize(const char *s, char *out);

/* Exact match and token F1 of one prediction against one gold answer (0 or 1 / 0..1).
 * Return -1 when out of memory. */
int hp_squad_em1(const char *pred, const char *gold, double *em);
int hp_squad_f11(const char *pred, const char *gold, double *f1);

/* Both scores of a prediction against n >= 1 accepted answers: the maximum over answers, as
 * the SQuAD script does. Returns 0, or -1 when n < 1 or out of memory. */
int hp_qa_score(const char *pred, const char *const *answers, int n, double *em, double *f1);

/* 1 when the normalised form of one of the answers occurs in the normalised prediction as whole
 * words (chat models answer in sentences: "The capital of Austria is Vienna."), else 0. */
int hp_qa_contains(const char *pred, const char *const *answers, int n);

/* Labels every item HP_QA_COUNTRY when one of its normalised answers equals a normalised entry
 * of countries, else HP_QA_OTHER (it overwrites kinds read from the file). Returns the number
 * of country items, or -1 when out of memory. */
int hp_qa_mark_kind(hp_qa_set *set, const hp_wordlist *countries);

/* numpy.percentile(x, q) with the default method="linear" (q in [0, 100]). NaN in x gives NaN,
 * like numpy. Returns -1 when n < 1, q is out of range, or out of memory. */
int hp_percentile(const double *x, int n, double q, double *out);

typedef struct hp_summary {
    int n;
    double mean;
    double median;
    double q25, q75; /* 25th and 75th percentiles */
    double iqr;      /* q75 - q25 */
    double min, max;
} hp_summary;

/* Returns -1 when n < 1 or out of memory. */
int hp_summarize(const double *x, int n, hp_summary *s);

#endif
