/* test_cider.c: host/eval/cider.c against pycocoevalcap 1.2 (tests/fixtures/cider/cider.json, made by
 * tests/ref/make_cider_fixtures.py):
 *   - every corpus of the fixture (tokenised and raw strings, 1 to 40 images, 1 to 7
 *     references) and candidate set: per-image CIDEr-D and the corpus mean equal CiderScorer's;
 *   - hp_cider_tokenize equals PTBTokenizer (+ pycocoevalcap's punctuation removal) on every
 *     string of the fixture;
 * and, without the fixture: a corpus scores the same twice, an image added after scoring gives
 * what a corpus built at once gives, a candidate equal to its only reference with no n-gram in
 * another image scores 10, and bad input fails with a message. Run from the repository root, or
 * set HP_CIDER_FIXTURE to the fixture file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cider.h"
#include "fileio.h"

/* Both sides compute in double; only the order of the sums differs (CiderScorer adds in
 * dict insertion order, cider.c in n-gram id order): a few ulps. The absolute part lets exact
 * zeros (one-image corpora, no shared n-gram) compare with zero. */
#define TOL_CIDER_REL 1e-9
#define TOL_CIDER_ABS 1e-12

static cJSON *fixture;

static const char *fixture_path(void) {
    const char *p = getenv("HP_CIDER_FIXTURE");
    return p ? p : "tests/fixtures/cider/cider.json";
}

static int setup(void **state) {
    (void)state;
    hp_err e = {0};
    if (!(fixture = hp_read_json(fixture_path(), &e))) {
        fprintf(stderr, "test_cider: %s (run from the repository root or set HP_CIDER_FIXTURE)\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(fixture);
    return 0;
}

/* The strings of a JSON array (pointers into the JSON); *n their count. */
static const char **strings(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    const char **s = calloc((size_t)(*n ? *n : 1), sizeof *s);
    assert_non_null(s);
    for (int i = 0; i < *n; i++) {
        s[i] = cJSON_GetStringValue(cJSON_GetArrayItem(arr, i));
        assert_non_null(s[i]);
    }
    return s;
}

/* A corpus of the fixture's references. */
static hp_cider *corpus_of(const cJSON *cj, int first, int count) {
    hp_err e = {0};
    hp_cider *c = hp_cider_new(cJSON_IsTrue(cJSON_GetObjectItem(cj, "raw")));
    assert_non_null(c);
    const cJSON *refs = cJSON_GetObjectItem(cj, "refs");
    for (int i = first; i < first + count; i++) {
        int n;
        const char **r = strings(cJSON_GetArrayItem(refs, i), &n);
        int id = hp_cider_add_image(c, r, n, &e);
        if (id != i) fail_msg("image %d: %s", i, e.msg);
        free(r);
    }
    return c;
}

static int close_to(double got, double want) {
    return fabs(got - want) <= TOL_CIDER_REL * fabs(want) + TOL_CIDER_ABS; /* NaN fails */
}

static void test_fixture_scores(void **state) {
    (void)state;
    const cJSON *cj;
    int n_sets = 0;
    cJSON_ArrayForEach(cj, cJSON_GetObjectItem(fixture, "corpora")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(cj, "name"));
        int n_img = cJSON_GetArraySize(cJSON_GetObjectItem(cj, "refs"));
        hp_cider *c = corpus_of(cj, 0, n_img);
        assert_int_equal(hp_cider_n_images(c), n_img);
        const cJSON *set;
        cJSON_ArrayForEach(set, cJSON_GetObjectItem(cj, "candidate_sets")) {
            int n;
            const char **cand = strings(cJSON_GetObjectItem(set, "candidates"), &n);
            assert_int_equal(n, n_img);
            double *per = malloc(sizeof *per * (size_t)n), mean = NAN, worst = 0.0;
            assert_non_null(per);
            for (int i = 0; i < n; i++) per[i] = NAN; /* poisoned: an unwritten score fails */
            hp_err e = {0};
            if (hp_cider_score(c, cand, per, &mean, &e)) fail_msg("%s: %s", name, e.msg);
            const cJSON *want = cJSON_GetObjectItem(set, "per_image");
            int bad = 0, worst_at = 0;
            for (int i = 0; i < n; i++) {
                double w = cJSON_GetArrayItem(want, i)->valuedouble;
                double rel = fabs(per[i] - w) / (fabs(w) > 0 ? fabs(w) : 1.0);
                if (!(rel <= worst)) worst = rel, worst_at = i;
                if (!close_to(per[i], w)) {
                    fprintf(stderr, "  %s/%s image %d: CIDEr-D %.17g, pycocoevalcap %.17g (candidate \"%s\")\n", name,
                            cJSON_GetStringValue(cJSON_GetObjectItem(set, "name")), i, per[i], w, cand[i]);
                    bad++;
                }
            }
            double wmean = cJSON_GetObjectItem(set, "score")->valuedouble;
            printf("%-13s %-12s %2d images: mean %.9f (pycocoevalcap %.9f), max rel err %.1e at image %d\n", name,
                   cJSON_GetStringValue(cJSON_GetObjectItem(set, "name")), n, mean, wmean, worst, worst_at);
            if (bad || !close_to(mean, wmean))
                fail_msg("%s: %d image scores differ; mean %.17g vs %.17g", name, bad, mean, wmean);
            free(per);
            free(cand);
            n_sets++;
        }
        hp_cider_free(c);
    }
    assert_true(n_sets >= 5);
}

static void test_tokenizer(void **state) {
    (void)state;
    const cJSON *pair;
    int n = 0, bad = 0;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(fixture, "tokenizer")) {
        const char *raw = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
        const char *want = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1));
        assert_non_null(raw);
        assert_non_null(want);
        char *got = hp_cider_tokenize(raw);
        assert_non_null(got);
        if (strcmp(got, want)) {
            fprintf(stderr, "  tokenize \"%s\"\n    got  \"%s\"\n    PTB  \"%s\"\n", raw, got, want);
            bad++;
        }
        free(got);
        n++;
    }
    printf("tokenizer: %d of %d strings as PTBTokenizer\n", n - bad, n);
    assert_true(n >= 20);
    assert_int_equal(bad, 0);
}

/* Scores of the fixture's first corpus: twice from one corpus, and from a corpus grown after
 * it was scored, are bit-identical to a corpus built at once. */
static void test_rescore_and_growth(void **state) {
    (void)state;
    const cJSON *cj = cJSON_GetArrayItem(cJSON_GetObjectItem(fixture, "corpora"), 0);
    int n_img = cJSON_GetArraySize(cJSON_GetObjectItem(cj, "refs")), n, half = n_img / 2;
    const cJSON *set = cJSON_GetArrayItem(cJSON_GetObjectItem(cj, "candidate_sets"), 0);
    const char **cand = strings(cJSON_GetObjectItem(set, "candidates"), &n);
    double *a = malloc(sizeof *a * (size_t)n), *b = malloc(sizeof *b * (size_t)n), ma, mb;
    assert_non_null(a);
    assert_non_null(b);
    hp_err e = {0};
    hp_cider *whole = corpus_of(cj, 0, n_img);
    assert_int_equal(hp_cider_score(whole, cand, a, &ma, &e), 0);
    assert_int_equal(hp_cider_score(whole, cand, b, &mb, &e), 0);
    assert_memory_equal(a, b, sizeof *a * (size_t)n);

    hp_cider *grown = corpus_of(cj, 0, half);
    double first;
    assert_int_equal(hp_cider_score(grown, cand, NULL, &first, &e), 0);
    const cJSON *refs = cJSON_GetObjectItem(cj, "refs");
    for (int i = half; i < n_img; i++) {
        int nr;
        const char **r = strings(cJSON_GetArrayItem(refs, i), &nr);
        assert_int_equal(hp_cider_add_image(grown, r, nr, &e), i);
        free(r);
    }
    assert_int_equal(hp_cider_score(grown, cand, b, &mb, &e), 0);
    assert_memory_equal(a, b, sizeof *a * (size_t)n);
    assert_true(ma == mb && first != ma); /* the half corpus had other document frequencies */
    hp_cider_free(whole);
    hp_cider_free(grown);
    free(a);
    free(b);
    free(cand);
}

/* Two images with no word in common; each candidate equals its image's only reference: every
 * n-gram has df 1, the clipped cosine is 1 for each n the sentence has, the penalty 1. */
static void test_identical_is_ten(void **state) {
    (void)state;
    const char *r0[] = {"a man rides a red bike"}, *r1[] = {"two dogs"};
    const char *cand[] = {"a man rides a red bike", "two dogs"};
    hp_err e = {0};
    hp_cider *c = hp_cider_new(0);
    assert_int_equal(hp_cider_add_image(c, r0, 1, &e), 0);
    assert_int_equal(hp_cider_add_image(c, r1, 1, &e), 1);
    double per[2], mean;
    assert_int_equal(hp_cider_score(c, cand, per, &mean, &e), 0);
    assert_true(fabs(per[0] - 10.0) < 1e-12);
    assert_true(fabs(per[1] - 10.0 * 2 / 4) < 1e-12); /* "two dogs": only 1- and 2-grams */
    hp_cider_free(c);
}

static void test_errors(void **state) {
    (void)state;
    hp_err e = {0};
    hp_cider *c = hp_cider_new(1);
    double mean;
    const char *cand[] = {NULL}, *refs[] = {"A dog ."};
    assert_int_equal(hp_cider_score(c, cand, NULL, &mean, &e), -1);
    assert_non_null(strstr(e.msg, "no image"));
    assert_int_equal(hp_cider_add_image(c, refs, 0, &e), -1);
    assert_non_null(strstr(e.msg, "no reference"));
    assert_int_equal(hp_cider_add_image(c, refs, 1, &e), 0);
    assert_int_equal(hp_cider_score(c, cand, NULL, &mean, &e), -1);
    assert_non_null(strstr(e.msg, "candidate"));
    hp_cider_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_scores),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_rescore_and_growth),
        cmocka_unit_test(test_identical_is_ten),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
