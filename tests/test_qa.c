/* test_qa.c: the QA experiment's data and evaluation pieces: SQuAD scoring against values from
 * the official script's logic, numpy-compatible percentiles, the JSONL / TriviaQA / word-list
 * readers on the fixtures in tests/fixtures/qa (good and deliberately broken files), and the
 * SVG writers (output parsed back as balanced XML). Run from the repository root, or set
 * HP_QA_FIXTURES to the fixture directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "fileio.h"
#include "metrics.h"
#include "plot.h"

static const char *fixture(const char *name) {
    static char buf[4][1024];
    static int slot;
    const char *dir = getenv("HP_QA_FIXTURES");
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "%s/%s", dir ? dir : "tests/fixtures/qa", name);
    return out;
}

/* ---- SQuAD metrics ------------------------------------------------------------------------- */

static void test_normalize(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        /* Expected strings from normalize_answer() of SQuAD v1.1's evaluate-v1.1.py. */
        {"The Eiffel Tower!", "eiffel tower"},
        {"the Broncos of Denver", "broncos of denver"},
        {"in the year 1990s", "in year 1990s"},
        {"Levi's Stadium in the San Francisco Bay Area at Santa Clara, California.",
         "levis stadium in san francisco bay area at santa clara california"},
        {"a a a cat", "cat"},
        {"U.S.A.", "usa"},
        {"an  apple\tpie", "apple pie"},
        {"theatre", "theatre"},
        {"the atre", "atre"},
        {"1,000 people", "1000 people"},
        {"Côte d'Ivoire", "côte divoire"}, /* non-ASCII bytes kept */
        {"  -- A --  ", ""},
        {"", ""},
        {"The-End", "theend"}, /* punctuation is removed before articles: no split */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[256];
        size_t n = hp_squad_normalize(cases[i].in, out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(cases[i].out));
    }
}

static void test_squad_scores(void **state) {
    (void)state;
    /* Expected EM/F1 from a re-typing of the official SQuAD v1.1 evaluate-v1.1.py logic
     * (normalize_answer, f1_score, exact_match_score, metric_max_over_ground_truths), run with
     * python3 on these exact inputs; the F1 values are pasted from its repr() output. */
    static const struct {
        const char *pred;
        const char *gold[3];
        int n;
        double em, f1;
    } cases[] = {
        {"The Eiffel Tower!", {"Eiffel tower"}, 1, 1, 1.0},
        {"Denver Broncos", {"Denver Broncos", "The Denver Broncos"}, 2, 1, 1.0},
        {"the Broncos of Denver", {"Denver Broncos"}, 1, 0, 0.8},
        {"Carolina Panthers and Denver Broncos", {"Denver Broncos"}, 1, 0, 0.5714285714285715},
        {"in the year 1990s", {"1990s", "the 1990s"}, 2, 0, 0.5},
        {"Santa Clara, California",
         {"Levi's Stadium", "Santa Clara, California",
          "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California."},
         3, 1, 1.0},
        {"Levi's Stadium",
         {"Levi's Stadium in the San Francisco Bay Area at Santa Clara, California."}, 1, 0,
         0.3076923076923077},
        {"a a a cat", {"the cat cat"}, 1, 0, 0.6666666666666666},
        {"don't stop", {"dont stop"}, 1, 1, 1.0},
        {"U.S.A.", {"USA"}, 1, 1, 1.0},
        {"", {"a"}, 1, 1, 0.0}, /* v1.1: both normalise to "", EM 1 but F1 0 */
        {"Côte d'Ivoire", {"cote divoire", "Côte d'Ivoire"}, 2, 1, 1.0},
        {"an  apple\tpie", {"Apple pie"}, 1, 1, 1.0},
        {"theatre", {"the atre"}, 1, 0, 0.0},
        {"Paris", {"London"}, 1, 0, 0.0},
        {"1,000 people", {"1000"}, 1, 0, 0.6666666666666666},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double em = -1, f1 = -1;
        assert_int_equal(hp_qa_score(cases[i].pred, cases[i].gold, cases[i].n, &em, &f1), 0);
        if (em != cases[i].em || fabs(f1 - cases[i].f1) > 1e-15)
            fail_msg("case %zu \"%s\": em %g f1 %.17g, expected %g %.17g", i, cases[i].pred, em,
                     f1, cases[i].em, cases[i].f1);
    }
    double em, f1;
    assert_int_equal(hp_qa_score("x", NULL, 0, &em, &f1), -1); /* no answers: an error */
}

/* ---- statistics ---------------------------------------------------------------------------- */

static void test_percentiles_match_numpy(void **state) {
    (void)state;
    /* Expected values from numpy 1.24.2:
     *   python3 -c "import numpy as np; a = np.array(ARR); print(np.percentile(a, [25, 50, 75]),
     *               a.mean(), np.percentile(a, 10), np.percentile(a, 90))"
     * (default method "linear"); the percentiles must match bit for bit. */
    static const struct {
        double x[10];
        int n;
        double q25, q50, q75, mean, p10, p90;
    } cases[] = {
        {{1.0}, 1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0},
        {{3.0, 1.0}, 2, 1.5, 2.0, 2.5, 2.0, 1.2, 2.8},
        {{0.2, 0.9, 0.4, 0.7}, 4, 0.35000000000000003, 0.55, 0.75, 0.55, 0.26, 0.8400000000000001},
        {{5, 1, 4, 2, 3}, 5, 2.0, 3.0, 4.0, 3.0, 1.4, 4.6},
        {{0.91, 0.88, 1.02, 0.97, 0.99, 1.0, 0.95, 0.93, 1.01, 0.9}, 10, 0.915, 0.96, 0.9975,
         0.9560000000000001, 0.898, 1.011},
        {{1e-3, -2.5, 7.25, 7.25, 0.1, 3.3, -1.0}, 7, -0.49949999999999994, 0.1, 5.275,
         2.0572857142857144, -1.5999999999999999, 7.25},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hp_summary s;
        assert_int_equal(hp_summarize(cases[i].x, cases[i].n, &s), 0);
        assert_int_equal(s.n, cases[i].n);
        assert_true(s.q25 == cases[i].q25);
        assert_true(s.median == cases[i].q50);
        assert_true(s.q75 == cases[i].q75);
        assert_true(s.iqr == cases[i].q75 - cases[i].q25);
        assert_true(fabs(s.mean - cases[i].mean) <= 1e-15 * fmax(1.0, fabs(cases[i].mean)));
        double p;
        assert_int_equal(hp_percentile(cases[i].x, cases[i].n, 10, &p), 0);
        assert_true(p == cases[i].p10);
        assert_int_equal(hp_percentile(cases[i].x, cases[i].n, 90, &p), 0);
        assert_true(p == cases[i].p90);
    }
}

static void test_stats_edges(void **state) {
    (void)state;
    double x[3] = {1.0, NAN, 2.0}, p;
    hp_summary s;
    assert_int_equal(hp_summarize(x, 3, &s), 0);
    assert_true(isnan(s.median) && isnan(s.iqr)); /* NaN never passes silently (numpy too) */
    assert_int_equal(hp_percentile(x, 0, 50, &p), -1);
    assert_int_equal(hp_percentile(x, 1, 101, &p), -1);
    assert_int_equal(hp_percentile(x, 1, NAN, &p), -1);
    assert_int_equal(hp_summarize(x, 0, &s), -1);
}

/* ---- loaders ------------------------------------------------------------------------------- */

static void test_jsonl_good(void **state) {
    (void)state;
    hp_qa_set s;
    hp_err e = {{0}};
    if (hp_qa_load_jsonl(fixture("good.jsonl"), &s, &e)) fail_msg("%s", e.msg);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.items[0].id, "europe/austria/country");
    assert_string_equal(s.items[0].question, "Which country has Vienna as its capital?");
    assert_int_equal(s.items[0].n_answers, 1);
    assert_string_equal(s.items[0].answers[0], "Austria");
    assert_int_equal(s.items[0].kind, HP_QA_COUNTRY);
    assert_string_equal(s.items[1].id, "17"); /* integer ids become strings */
    assert_int_equal(s.items[1].n_answers, 2); /* the repeated "Vienna" is dropped */
    assert_string_equal(s.items[1].answers[1], "Wien");
    assert_int_equal(s.items[1].kind, HP_QA_OTHER);
    assert_string_equal(s.items[2].id, "4"); /* no id: its line number (blank line 2 counts) */
    assert_string_equal(s.items[2].answers[0], "Côte d'Ivoire"); /* single "answer" form */
    assert_int_equal(s.items[2].kind, HP_QA_UNKNOWN);
    assert_string_equal(s.items[3].id, "q5");
    assert_int_equal(s.items[3].kind, HP_QA_UNKNOWN);
    /* each record's line, for messages about it (blank and whitespace-only lines counted) */
    assert_int_equal(s.items[0].line, 1);
    assert_int_equal(s.items[1].line, 3);
    assert_int_equal(s.items[2].line, 4);
    assert_int_equal(s.items[3].line, 6);
    hp_qa_free(&s);
    assert_null(s.items);

    if (hp_qa_load_jsonl(fixture("crlf.jsonl"), &s, &e)) fail_msg("%s", e.msg);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.items[1].answers[0], "A2");
    hp_qa_free(&s);
}

/* Loads a broken file and checks that the error names it, with the expected location. */
static void expect_error(int (*load)(const char *, hp_qa_set *, hp_err *), const char *name,
                         const char *where, const char *what) {
    hp_qa_set s = {0};
    hp_err e = {{0}};
    char want[1200];
    snprintf(want, sizeof want, "%s%s", fixture(name), where);
    if (load(fixture(name), &s, &e) == 0) fail_msg("%s loaded without error", name);
    if (!strstr(e.msg, want) || !strstr(e.msg, what))
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", e.msg, want, what);
    assert_null(s.items);
    print_message("  expected error: %s\n", e.msg);
}

static void test_jsonl_errors(void **state) {
    (void)state;
    expect_error(hp_qa_load_jsonl, "bad_line3.jsonl", ":3:", "malformed JSON");
    expect_error(hp_qa_load_jsonl, "missing_question.jsonl", ":2:", "\"question\"");
    expect_error(hp_qa_load_jsonl, "answers_not_strings.jsonl", ":4:", "\"answers\"[1] is not a string");
    expect_error(hp_qa_load_jsonl, "trailing_garbage.jsonl", ":1:", "malformed JSON at column 70");
    expect_error(hp_qa_load, "bad_line3.jsonl", ":3:", "malformed JSON");
    expect_error(hp_qa_load_jsonl, "no_such_file.jsonl", "", "cannot open");
}

static void test_triviaqa(void **state) {
    (void)state;
    hp_qa_set s;
    hp_err e = {{0}};
    if (hp_qa_load_triviaqa(fixture("triviaqa_small.json"), &s, &e)) fail_msg("%s", e.msg);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.items[0].id, "hp_fixture_1");
    assert_string_equal(s.items[0].question, "Which country has Vienna as its capital?");
    /* Value first, then Aliases without the repeated "Austria". */
    assert_int_equal(s.items[0].n_answers, 4);
    assert_string_equal(s.items[0].answers[0], "Austria");
    assert_string_equal(s.items[0].answers[1], "Republic of Austria");
    assert_string_equal(s.items[0].answers[3], "AUSTRIA");
    assert_int_equal(s.items[0].kind, HP_QA_UNKNOWN);
    assert_int_equal(s.items[2].n_answers, 1);
    assert_string_equal(s.items[2].answers[0], "The Netherlands");
    assert_int_equal(s.items[2].line, 0); /* TriviaQA records are named by their Data index */
    hp_qa_free(&s);

    /* hp_qa_load tells the two formats apart by content. */
    if (hp_qa_load(fixture("triviaqa_small.json"), &s, &e)) fail_msg("%s", e.msg);
    assert_int_equal(s.n, 3);
    hp_qa_free(&s);
    if (hp_qa_load(fixture("good.jsonl"), &s, &e)) fail_msg("%s", e.msg);
    assert_int_equal(s.n, 4);
    hp_qa_free(&s);

    expect_error(hp_qa_load_triviaqa, "triviaqa_malformed.json", ":9:", "malformed JSON");
    expect_error(hp_qa_load_triviaqa, "triviaqa_no_answer.json", ": Data[1]", "no \"Answer\"");
    expect_error(hp_qa_load_triviaqa, "good.jsonl", ":3:", "malformed JSON");
    expect_error(hp_qa_load_triviaqa, "crlf.jsonl", ":2:", "malformed JSON");
}

static void test_wordlist(void **state) {
    (void)state;
    hp_wordlist w;
    hp_err e = {{0}};
    if (hp_wordlist_load(fixture("countries.txt"), &w, &e)) fail_msg("%s", e.msg);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.words[0], "Austria");
    assert_string_equal(w.words[1], "Netherlands"); /* surrounding spaces trimmed */
    assert_string_equal(w.words[2], "Côte d'Ivoire");
    assert_string_equal(w.words[3], "United States");
    hp_wordlist_free(&w);
    assert_null(w.words);

    assert_int_equal(hp_wordlist_load(fixture("bad_utf8.txt"), &w, &e), -1);
    char want[1100];
    snprintf(want, sizeof want, "%s:3:", fixture("bad_utf8.txt"));
    if (!strstr(e.msg, want) || !strstr(e.msg, "invalid UTF-8 at column 5"))
        fail_msg("error \"%s\" lacks \"%s\"", e.msg, want);
}

static void test_utf8_validator(void **state) {
    (void)state;
    static const struct {
        const char *s;
        long bad;
    } cases[] = {
        {"plain", -1},          {"Côte", -1},           {"\xe2\x82\xac", -1},  /* € */
        {"\xf0\x9f\x98\x80", -1},                                            /* emoji */
        {"ab\xc3", 2},          {"\xc0\xaf", 0},        {"x\xe0\x80\xaf", 1}, /* overlongs */
        {"\xed\xa0\x80", 0},    {"\xf4\x90\x80\x80", 0}, {"\x80", 0},        /* surrogate, >U+10FFFF */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_int_equal(hp_utf8_invalid_at(cases[i].s, strlen(cases[i].s)), cases[i].bad);
}

static void test_mark_kind(void **state) {
    (void)state;
    hp_qa_set s;
    hp_wordlist w;
    hp_err e = {{0}};
    if (hp_qa_load(fixture("triviaqa_small.json"), &s, &e)) fail_msg("%s", e.msg);
    if (hp_wordlist_load(fixture("countries.txt"), &w, &e)) fail_msg("%s", e.msg);
    assert_int_equal(hp_qa_mark_kind(&s, &w), 2);
    assert_int_equal(s.items[0].kind, HP_QA_COUNTRY); /* "Austria" */
    assert_int_equal(s.items[1].kind, HP_QA_OTHER);   /* "Iron" */
    assert_int_equal(s.items[2].kind, HP_QA_COUNTRY); /* "The Netherlands" ~ "Netherlands" */
    assert_string_equal(hp_qa_kind_name(s.items[1].kind), "other");
    hp_qa_free(&s);
    hp_wordlist_free(&w);
}

/* ---- SVG ----------------------------------------------------------------------------------- */

static char tmpdir[64];

static int setup_tmp(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/hp_test_qa_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Minimal XML check: every element closes in order, the root is <svg>, and nothing but
 * whitespace follows it. Enough to catch a truncated or mis-nested file. */
static void check_xml(const char *s) {
    const char *stack[64];
    size_t len[64];
    int depth = 0, seen_root = 0;
    const char *p = s;
    assert_true(strncmp(s, "<svg", 4) == 0);
    while ((p = strchr(p, '<'))) {
        const char *end = strchr(p, '>');
        assert_non_null(end);
        if (p[1] == '/') {
            size_t n = strcspn(p + 2, " >");
            assert_true(depth > 0);
            depth--;
            if (len[depth] != n || strncmp(stack[depth], p + 2, n))
                fail_msg("</%.*s> closes <%.*s>", (int)n, p + 2, (int)len[depth], stack[depth]);
            if (depth == 0) {
                const char *t = end + 1;
                while (*t == '\n' || *t == ' ') t++;
                assert_int_equal(*t, 0);
            }
        } else if (end[-1] != '/') {
            assert_true(depth < 64);
            stack[depth] = p + 1;
            len[depth] = strcspn(p + 1, " />");
            depth++;
            seen_root = 1;
        }
        p = end + 1;
    }
    assert_int_equal(depth, 0);
    assert_true(seen_root);
}

static char *read_all(const char *path) {
    char *buf;
    size_t n;
    hp_err e;
    if (hp_read_file(path, &buf, &n, &e)) fail_msg("%s", e.msg);
    return buf;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_svg_line(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/line.svg", tmpdir);
    double x[3] = {8, 16, 32};
    double y1[3] = {0.6, 0.4, 0.2}, y2[3] = {0.97, NAN, 0.9};
    double m[3] = {1.0, 0.99, 0.98}, lo[3] = {0.96, 0.95, 0.92}, hi[3] = {1.02, 1.03, 1.01};
    hp_plot_series s[3] = {{"SOMP country", y1, NULL, NULL, NULL, 0, 0},
                           {"SOMP other <&>", y2, NULL, NULL, "#d62728", 1, 0},
                           {"random country", m, lo, hi, NULL, 0, 0}};
    hp_line_chart c = {"F1 after inverting k heads", "edited heads k", "F1 / unedited", x, 3, s,
                       3, 1, NAN, NAN, 1.0};
    hp_err e = {{0}};
    if (hp_plot_line_svg(path, &c, &e)) fail_msg("%s", e.msg);
    char *svg = read_all(path);
    check_xml(svg);
    assert_non_null(strstr(svg, "SOMP country"));
    assert_non_null(strstr(svg, "SOMP other &lt;&amp;&gt;")); /* names are escaped */
    assert_non_null(strstr(svg, "random country"));
    assert_non_null(strstr(svg, "F1 after inverting k heads"));
    assert_int_equal(count(svg, "fill-opacity=\"0.18\""), 2); /* one band, one legend swatch */
    assert_int_equal(count(svg, ">16</text>"), 1);          /* x ticks at the data's k */
    /* The first series (the method) is drawn last, on top of the controls. */
    assert_true(strstr(svg, "<title>SOMP country</title>") > strstr(svg, "<title>random country</title>"));
    assert_null(strstr(svg, "overlapping lines"));
    free(svg);

    /* A control equal to the method everywhere is hidden under it: the legend says so; a partial
     * overlap names the k where it happens. Distinct markers per series. */
    double same[3] = {0.6, 0.4, 0.2}, part[3] = {0.9, 0.8, 0.2};
    hp_plot_series s2[4] = {{"SOMP country", y1, NULL, NULL, NULL, 0, 0},
                            {"LL country", same, NULL, NULL, NULL, 0, 1},
                            {"SOMP other", part, NULL, NULL, NULL, 1, 0},
                            {"random other", part, NULL, NULL, NULL, 1, 2}};
    c.series = s2;
    c.n_series = 4;
    if (hp_plot_line_svg(path, &c, &e)) fail_msg("%s", e.msg);
    svg = read_all(path);
    check_xml(svg);
    assert_non_null(strstr(svg, "overlapping lines"));
    assert_non_null(strstr(svg, ">LL country</text>\n<text x=\"")); /* note: the hidden series, then */
    assert_non_null(strstr(svg, ">= SOMP country at every k</text>"));
    assert_non_null(strstr(svg, ">= SOMP country at k = 32</text>"));
    /* Equal to SOMP other everywhere (and to SOMP country at one k): the full overlap is named. */
    assert_non_null(strstr(svg, ">= SOMP other at every k</text>"));
    assert_int_equal(count(svg, "<circle"), 2 * (3 + 1)); /* SOMP's points + legend entries */
    assert_int_equal(count(svg, "width=\"8.4\""), 3 + 1);  /* squares: LL's */
    free(svg);
    c.n_series = 3;
    c.series = s;

    /* Broken inputs fail with a message naming the file, and leave no file behind. */
    snprintf(path, sizeof path, "%s/bad.svg", tmpdir);
    double xd[3] = {8, 8, 32};
    c.x = xd;
    assert_int_equal(hp_plot_line_svg(path, &c, &e), -1);
    assert_non_null(strstr(e.msg, "increase"));
    c.x = x;
    s[0].color = "red\" onload=\"x";
    assert_int_equal(hp_plot_line_svg(path, &c, &e), -1);
    assert_non_null(strstr(e.msg, "#rrggbb"));
    assert_false(hp_file_exists(path));
}

static void test_svg_heatmap(void **state) {
    (void)state;
    enum { L = 6, H = 4 };
    float v[L * H];
    unsigned char hl[L * H] = {0};
    for (int i = 0; i < L * H; i++) v[i] = (float)i / (L * H - 1);
    v[5] = NAN;
    hl[7] = hl[22] = 1;
    char path[128];
    snprintf(path, sizeof path, "%s/heat.svg", tmpdir);
    hp_heatmap h = {"Country heads & EVR", "head", "layer", "EVR", v, L, H, hl, NAN, NAN, "k = 2"};
    hp_err e = {{0}};
    if (hp_plot_heatmap_svg(path, &h, &e)) fail_msg("%s", e.msg);
    char *svg = read_all(path);
    check_xml(svg);
    assert_non_null(strstr(svg, "Country heads &amp; EVR"));
    assert_non_null(strstr(svg, ">k = 2</text>")); /* the subtitle */
    assert_int_equal(count(svg, "stroke=\"black\""), 2);          /* the two selected heads */
    assert_int_equal(count(svg, "<title>L"), L * H);              /* one cell per head */
    assert_non_null(strstr(svg, "fill=\"#440154\"><title>L0 H0:"));  /* vmin: viridis start */
    assert_non_null(strstr(svg, "fill=\"#fde725\"><title>L5 H3:"));  /* vmax: viridis end */
    assert_non_null(strstr(svg, "fill=\"#d0d0d0\"><title>L1 H1: nan")); /* NaN: grey */
    free(svg);
    h.rows = 0;
    assert_int_equal(hp_plot_heatmap_svg(path, &h, &e), -1);
}

static void test_viridis(void **state) {
    (void)state;
    unsigned char c[3];
    hp_viridis(0.0, c);
    assert_memory_equal(c, "\x44\x01\x54", 3);
    hp_viridis(1.0, c);
    assert_memory_equal(c, "\xfd\xe7\x25", 3);
    hp_viridis(2.0, c); /* clamped */
    assert_memory_equal(c, "\xfd\xe7\x25", 3);
    hp_viridis(0.5, c); /* an anchor: matplotlib's viridis(0.5) = #21918c */
    assert_memory_equal(c, "\x21\x91\x8c", 3);
}

int main(void) {
    if (!hp_file_exists(fixture("good.jsonl"))) {
        fprintf(stderr, "test_qa: fixtures not found at %s (run from the repository root or set "
                        "HP_QA_FIXTURES)\n", fixture(""));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_squad_scores),
        cmocka_unit_test(test_percentiles_match_numpy),
        cmocka_unit_test(test_stats_edges),
        cmocka_unit_test(test_jsonl_good),
        cmocka_unit_test(test_jsonl_errors),
        cmocka_unit_test(test_triviaqa),
        cmocka_unit_test(test_wordlist),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_mark_kind),
        cmocka_unit_test(test_svg_line),
        cmocka_unit_test(test_svg_heatmap),
        cmocka_unit_test(test_viridis),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
