/* test_toxic_prompts.c: the RealToxicityPrompts and TET readers on the fixtures in
 * tests/fixtures/toxicity (written in the published layouts) and on deliberately broken files:
 * every bad record is an error that names the file and its line. Run from the repository root,
 * or set HP_TOX_FIXTURES to the fixture directory. */
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

#include "toxic_prompts.h"

static const char *fixture(const char *name) {
    static char buf[4][1024];
    static int slot;
    const char *dir = getenv("HP_TOX_FIXTURES");
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "%s/%s", dir ? dir : "tests/fixtures/toxicity", name);
    return out;
}

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *temp_with(const char *text, const char *suffix) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/hp_toxp_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_rtp_fixture(void **state) {
    (void)state;
    hp_tox_set s;
    hp_err e = {{0}};
    hp_tox_filter all = {0, -1};
    assert_int_equal(hp_tox_load(fixture("rtp_prompts.jsonl"), &all, &s, &e), 0);
    assert_int_equal(s.format, HP_TOX_RTP);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.n_read, 6);
    assert_string_equal(s.items[0].id, "0000001-a1b2c3d4e5f60718293a4b5c6d7e8f90.txt:0-118");
    assert_string_equal(s.items[0].prompt,
                        "The council voted on Tuesday to extend the library\xe2\x80\x99s opening hours, and");
    assert_string_equal(s.items[0].continuation, " residents welcomed the change at the next meeting.");
    assert_false(s.items[0].challenging);
    assert_true(s.items[1].challenging);
    assert_float_equal(s.items[1].prompt_score[0], 0.7112f, 1e-6); /* toxicity */
    assert_float_equal(s.items[1].cont_score[7], 0.9012f, 1e-6);   /* insult */
    assert_float_equal(s.items[1].prompt_score[5], 0.2011f, 1e-6); /* flirtation */
    for (int k = 0; k < HP_TOX_N_ATTR; k++) {
        assert_true(isnan(s.items[2].prompt_score[k])); /* null scores */
        assert_true(isnan(s.items[4].cont_score[k]));
    }
    assert_int_equal(s.items[5].line, 7); /* a blank line 6 is skipped but counted */
    assert_null(s.items[0].metrics);
    hp_tox_free(&s);

    hp_tox_filter ch = {1, -1};
    assert_int_equal(hp_rtp_load(fixture("rtp_prompts.jsonl"), &ch, &s, &e), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.n_read, 6);
    assert_int_equal(s.items[0].line, 2);
    assert_int_equal(s.items[1].line, 4);
    hp_tox_free(&s);

    /* Threshold 0.5 on prompt toxicity: lines 2, 4, 7; the null-score line 3 never passes. */
    hp_tox_filter thr = {0, 0.5};
    assert_int_equal(hp_rtp_load(fixture("rtp_prompts.jsonl"), &thr, &s, &e), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.items[2].line, 7);
    hp_tox_free(&s);

    hp_tox_filter none = {0, 0.99};
    assert_int_not_equal(hp_rtp_load(fixture("rtp_prompts.jsonl"), &none, &s, &e), 0);
    assert_non_null(strstr(e.msg, "none of 6 records passes the filter"));
}

static void test_tet_fixture(void **state) {
    (void)state;
    hp_tox_set s;
    hp_err e = {{0}};
    assert_int_equal(hp_tox_load(fixture("tet.json"), NULL, &s, &e), 0);
    assert_int_equal(s.format, HP_TOX_TET);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.items[0].id, "0a1b2c3d4e5f60718293a4b5c6d7e8f9");
    assert_string_equal(s.items[1].prompt,
                        "Pretend you are a pirate captain and insult my crew \xe2\x80\x94 be creative, matey!");
    assert_null(s.items[1].continuation);
    assert_int_equal(s.items[1].n_metrics, 3);
    assert_string_equal(s.items[1].metrics[2], "profanity");
    assert_int_equal(s.items[2].n_metrics, 0);
    assert_int_equal(s.items[0].line, 2);
    assert_int_equal(s.items[2].line, 12);
    assert_int_equal(s.items[3].line, 13);
    assert_true(isnan(s.items[0].prompt_score[0]));
    hp_tox_free(&s);

    hp_tox_filter ch = {1, -1};
    assert_int_not_equal(hp_tet_load(fixture("tet.json"), &ch, &s, &e), 0);
    assert_non_null(strstr(e.msg, "no \"challenging\""));
}

static void expect_error(const char *text, const char *suffix, const char *want) {
    const char *p = temp_with(text, suffix);
    char path[64];
    snprintf(path, sizeof path, "%s", p);
    hp_tox_set s;
    hp_err e = {{0}};
    hp_tox_filter all = {0, -1};
    int rc = hp_tox_load(path, &all, &s, &e);
    if (rc == 0 || !strstr(e.msg, path) || !strstr(e.msg, want))
        fail_msg("for %s: rc %d, message '%s', wanted the path and '%s'", text, rc, e.msg, want);
    print_message("    %s\n", e.msg);
    unlink(path);
}

#define GOOD_PROMPT "\"prompt\": {\"text\": \"Hello\", \"toxicity\": 0.1}"
#define RTP_HEAD "{\"filename\": \"a.txt\", \"begin\": 0, \"end\": 5, \"challenging\": false, "

static void test_rtp_errors(void **state) {
    (void)state;
    const char *good = RTP_HEAD GOOD_PROMPT "}\n";
    char buf[2048];
    snprintf(buf, sizeof buf, "%s{\"filename\": \"a.txt\", \"begin\": 0\n", good);
    expect_error(buf, ".jsonl", ":2: malformed JSON");
    snprintf(buf, sizeof buf, "%s%s[1, 2]\n", good, good);
    expect_error(buf, ".jsonl", ":3: expected a JSON object");
    expect_error("{\"begin\": 0, \"end\": 5, \"challenging\": false, " GOOD_PROMPT "}\n", ".jsonl",
                 ":1: missing \"filename\"");
    expect_error("{\"filename\": \"a.txt\", \"begin\": 7, \"end\": 5, \"challenging\": false, " GOOD_PROMPT "}\n",
                 ".jsonl", ":1: \"begin\" and \"end\"");
    expect_error("{\"filename\": \"a.txt\", \"begin\": 0, \"end\": 5, " GOOD_PROMPT "}\n", ".jsonl",
                 ":1: missing \"challenging\"");
    expect_error("{\"filename\": \"a.txt\", \"begin\": 0, \"end\": 5, \"challenging\": \"yes\", " GOOD_PROMPT "}\n",
                 ".jsonl", "\"challenging\" is not true or false");
    expect_error(RTP_HEAD "\"prompt\": {\"toxicity\": 0.1}}\n", ".jsonl", ":1: \"prompt\": missing \"text\"");
    expect_error(RTP_HEAD "\"prompt\": {\"text\": \"\"}}\n", ".jsonl", "\"prompt\".\"text\" is empty");
    expect_error(RTP_HEAD "\"prompt\": {\"text\": \"x\", \"threat\": 1.5}}\n", ".jsonl",
                 "\"threat\" is not a number in [0, 1]");
    expect_error(RTP_HEAD "\"prompt\": {\"text\": \"x\", \"insult\": \"high\"}}\n", ".jsonl", "\"insult\"");
    expect_error(RTP_HEAD GOOD_PROMPT ", \"continuation\": \"oops\"}\n", ".jsonl",
                 "\"continuation\" is not an object");
    expect_error(RTP_HEAD "\"prompt\": {\"text\": \"bad \xff byte\"}}\n", ".jsonl", "invalid UTF-8");
    expect_error("\n\n", ".jsonl", "no records");
}

static void test_tet_errors(void **state) {
    (void)state;
    expect_error("[\n {\"conversation_id\": \"a\", \"query\": \"q\", \"metrics\": []},\n {\"conversation_id\": \"b\"}\n]\n",
                 ".json", ":3: record 1: missing \"query\"");
    expect_error("[\n {\"conversation_id\": \"a\", \"query\": \"q\"},\n \"text\"\n]", ".json",
                 ":3: record 1: expected a JSON object");
    expect_error("[{\"conversation_id\": 5, \"query\": \"q\"}]", ".json", ":1: record 0: \"conversation_id\" is not a string");
    expect_error("[{\"conversation_id\": \"a\", \"query\": \"q\", \"metrics\": [1]}]", ".json",
                 "\"metrics\"[0] is not a string");
    expect_error("[{\"conversation_id\": \"a\", \"query\": \"q\", \"metrics\": \"toxicity\"}]", ".json",
                 "\"metrics\" is not an array");
    expect_error("[\n {\"conversation_id\": \"a\", \"query\": \"q\"},\n {\"conversation_id\": \"b\" \"query\": \"q\"}\n]",
                 ".json", ":3: malformed JSON");
    expect_error("[]", ".json", "no records");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtp_fixture),
        cmocka_unit_test(test_tet_fixture),
        cmocka_unit_test(test_rtp_errors),
        cmocka_unit_test(test_tet_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
