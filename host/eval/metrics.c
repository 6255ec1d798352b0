/* metrics.c: SQuAD v1.1 answer normalisation, exact match and token F1; numpy-compatible
 * percentiles. Reference for the scoring: the official SQuAD v1.1 evaluate-v1.1.py
 * (normalize_answer, exact_match_score, f1_score, metric_max_over_ground_truths). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Python's string.punctuation. */
static int is_punct(unsigned char c) {
    return c && c < 0x80 && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) != NULL;
}

/* str.split() without arguments splits on these (ASCII part: space, \t \n \v \f \r and the
 * separators \x1c-\x1f). */
static int is_ws(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f); }

size_t hp_squad_normalize(const char *s, char *out) {
    /* Order as in the script: lower, remove punctuation, remove articles, fix whitespace.
     * After the first two steps only word characters and whitespace remain (bytes >= 0x80
     * count as word characters), so \b(a|an|the)\b matches exactly the whitespace-separated
     * tokens a, an and the, and the last two steps become: keep non-article tokens, joined by
     * one space. */
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        while (*p && (is_ws(*p) || is_punct(*p))) p++;
        if (!*p) break;
        size_t start = n;
        if (n) out[n++] = ' ';
        size_t tok = n;
        for (; *p && !is_ws(*p); p++) {
            if (is_punct(*p)) continue; /* "don't" -> "dont": punctuation joins, not splits */
            unsigned char c = *p;
            out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        size_t len = n - tok;
        if ((len == 1 && out[tok] == 'a') || (len == 2 && !memcmp(out + tok, "an", 2)) ||
            (len == 3 && !memcmp(out + tok, "the", 3)))
            n = start;
    }
    out[n] = 0;
    return n;
}

static char *normalized_dup(const char *s) {
    char *o = malloc(strlen(s) + 1);
    if (o) hp_squad_normalize(s, o);
    return o;
}

int hp_squad_em1(const char *pred, const char *gold, double *em) {
    char *a = normalized_dup(pred), *b = normalized_dup(gold);
    int rc = (a && b) ? 0 : -1;
    if (!rc) *em = strcmp(a, b) == 0 ? 1.0 : 0.0;
    free(a);
    free(b);
    return rc;
}

/* Splits a normalised string (single spaces, no leading/trailing) in place. */
static int split_tokens(char *s, char ***toks, int *n) {
    int cnt = 0;
    for (char *p = s; *p; p++) cnt += *p == ' ';
    cnt += *s ? 1 : 0;
    *toks = malloc(sizeof(char *) * (size_t)(cnt ? cnt : 1));
    if (!*toks) return -1;
    *n = 0;
    for (char *p = s; *p;) {
        (*toks)[(*n)++] = p;
        char *sp = strchr(p, ' ');
        if (!sp) break;
        *sp = 0;
        p = sp + 1;
    }
    return 0;
}

int hp_squad_f11(const char *pred, const char *gold, double *f1) {
    char *a = normalized_dup(pred), *b = normalized_dup(gold);
    char **ta = NULL, **tb = NULL;
    unsigned char *used = NULL;
    int na = 0, nb = 0, rc = -1;
    if (!a || !b || split_tokens(a, &ta, &na) || split_tokens(b, &tb, &nb)) goto done;
    used = calloc((size_t)(nb ? nb : 1), 1);
    if (!used) goto done;
    /* Counter(pred) & Counter(gold): each gold token can be matched once. */
    int same = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (!used[j] && !strcmp(ta[i], tb[j])) {
                used[j] = 1;
                same++;
                break;
            }
    if (same == 0) {
        *f1 = 0.0;
    } else {
        double precision = (double)same / na, recall = (double)same / nb;
        *f1 = 2.0 * precision * recall / (precision + recall);
    }
    rc = 0;
done:
    free(used);
    free(ta);
    free(tb);
    free(a);
    free(b);
    return rc;
}

int hp_qa_score(const char *pred, const char *const *answers, int n, double *em, double *f1) {
    if (n < 1) return -1;
    double best_em = 0.0, best_f1 = 0.0;
    for (int i = 0; i < n; i++) {
        double x, y;
        if (hp_squad_em1(pred, answers[i], &x) || hp_squad_f11(pred, answers[i], &y)) return -1;
        if (x > best_em) best_em = x;
        if (y > best_f1) best_f1 = y;
    }
    *em = best_em;
    *f1 = best_f1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hp_qa_mark_kind(hp_qa_set *set, const hp_wordlist *countries) {
    char **norm = malloc(sizeof(char *) * (size_t)(countries->n ? countries->n : 1));
    int nn = 0, count = 0, rc = -1;
    if (!norm) return -1;
    for (int i = 0; i < countries->n; i++) {
        if (!(norm[nn] = normalized_dup(countries->words[i]))) goto done;
        if (norm[nn][0]) nn++; /* a word that normalises to nothing ("The") matches nothing */
        else free(norm[nn]);
    }
    qsort(norm, (size_t)nn, sizeof *norm, cmp_str);
    for (int i = 0; i < set->n; i++) {
        hp_qa_item *it = &set->items[i];
        it->kind = HP_QA_OTHER;
        for (int k = 0; k < it->n_answers; k++) {
            char *a = normalized_dup(it->answers[k]);
            if (!a) goto done;
            int hit = bsearch(&a, norm, (size_t)nn, sizeof *norm, cmp_str) != NULL;
            free(a);
            if (hit) {
                it->kind = HP_QA_COUNTRY;
                count++;
                break;
            }
        }
    }
    rc = count;
done:
    for (int i = 0; i < nn; i++) free(norm[i]);
    free(norm);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's _lerp: a + (b-a)*t, computed from the upper end when t >= 0.5 so the result is
 * monotone and exact at t = 1; the same formula keeps our values bit-identical to numpy's. */
static double lerp(double a, double b, double t) {
    double d = b - a;
    return t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
}

static double percentile_sorted(const double *v, int n, double q) {
    double idx = q / 100.0 * (double)(n - 1);
    double lo = floor(idx);
    int i = (int)lo;
    if (i >= n - 1) return v[n - 1];
    return lerp(v[i], v[i + 1], idx - lo);
}

static int sorted_copy(const double *x, int n, double **out, int *has_nan) {
    double *v = malloc(sizeof(double) * (size_t)n);
    if (!v) return -1;
    *has_nan = 0;
    for (int i = 0; i < n; i++) {
        v[i] = x[i];
        if (isnan(v[i])) *has_nan = 1;
    }
    if (!*has_nan) qsort(v, (size_t)n, sizeof *v, cmp_double);
    *out = v;
    return 0;
}

int hp_percentile(const double *x, int n, double q, double *out) {
    if (n < 1 || !(q >= 0.0 && q <= 100.0)) return -1;
    double *v;
    int has_nan;
    if (sorted_copy(x, n, &v, &has_nan)) return -1;
    *out = has_nan ? NAN : percentile_sorted(v, n, q);
    free(v);
    return 0;
}

int hp_summarize(const double *x, int n, hp_summary *s) {
    if (n < 1) return -1;
    double *v;
    int has_nan;
    if (sorted_copy(x, n, &v, &has_nan)) return -1;
    s->n = n;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += x[i];
    s->mean = sum / n;
    if (has_nan) {
        s->median = s->q25 = s->q75 = s->iqr = s->min = s->max = NAN;
    } else {
        s->median = percentile_sorted(v, n, 50.0);
        s->q25 = percentile_sorted(v, n, 25.0);
        s->q75 = percentile_sorted(v, n, 75.0);
        s->iqr = s->q75 - s->q25;
        s->min = v[0];
        s->max = v[n - 1];
    }
    free(v);
    return 0;
}

int hp_qa_contains(const char *pred, const char *const *answers, int n) {
    size_t pl = strlen(pred);
    char *p = malloc(pl + 3);
    if (!p) return 0;
    p[0] = ' ';
    size_t k = hp_squad_normalize(pred, p + 1);
    p[k + 1] = ' ';
    p[k + 2] = 0;
    int hit = 0;
    for (int i = 0; i < n && !hit; i++) {
        size_t al = strlen(answers[i]);
        char *a = malloc(al + 3);
        if (!a) break;
        a[0] = ' ';
        size_t m = hp_squad_normalize(answers[i], a + 1);
        a[m + 1] = ' ';
        a[m + 2] = 0;
        hit = m > 0 && strstr(p, a) != NULL;
        free(a);
    }
    free(p);
    return hit;
}
