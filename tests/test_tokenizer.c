/* test_tokenizer.c: weights/tokenizer*.c against Hugging Face. The fixtures under
 * tests/fixtures/tok/ (written by tests/ref/make_tok_fixtures.py with `tokenizers` and
 * transformers' GGUF conversion) hold, per tokenizer, ~190 texts (a corpus of exotic lines,
 * invalid UTF-8, seeded random texts, a 10 kB text) with HF's ids (with and without special
 * tokens) and decode() output (with and without skip_special_tokens), plus id_to_token samples
 * and BOS/EOS facts. Each tokenizer.json fixture is loaded with hp_tok_from_json, each GGUF with
 * hp_tok_from_gguf; SmolLM2's ids are checked through both its exported tokenizer.json and the
 * real GGUF (skipped when models/ lacks it). Also: malformed tokenizer.json / GGUF files must
 * fail with a message naming the file and the field; a seeded round-trip property test with
 * arbitrary bytes; a timing bound for a 10 kB text; and a check that the checker itself catches
 * a corrupted expectation. Run from the repository root (tests/run_tests.sh does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "gguf.h"
#include "store.h"
#include "tokenizer.h"

#define FIX "tests/fixtures/tok"
#define SMOL_GGUF "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static int n_tests_run, n_tests_skipped;

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                    */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

static cJSON *load_json(const char *path) {
    char *data;
    size_t len;
    hp_err e = {{0}};
    if (hp_read_file(path, &data, &len, &e)) fail_msg("%s", e.msg);
    cJSON *doc = cJSON_ParseWithLength(data, len);
    free(data);
    if (!doc) fail_msg("%s: not valid JSON", path);
    return doc;
}

/* A case's string: "<key>" (JSON string) or "<key>_hex"; NULL if neither. */
static char *case_bytes(const cJSON *c, const char *key, size_t *len) {
    char hk[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    if (cJSON_IsString(v)) {
        *len = strlen(v->valuestring);
        char *s = xmalloc(*len + 1);
        memcpy(s, v->valuestring, *len + 1);
        return s;
    }
    snprintf(hk, sizeof hk, "%s_hex", key);
    v = cJSON_GetObjectItemCaseSensitive(c, hk);
    if (!cJSON_IsString(v)) return NULL;
    size_t n = strlen(v->valuestring) / 2;
    char *s = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned b;
        sscanf(v->valuestring + 2 * i, "%2x", &b);
        s[i] = (char)b;
    }
    s[n] = 0;
    *len = n;
    return s;
}

/* Prints s with control bytes, quotes and non-UTF-8-looking bytes escaped, at most max bytes. */
static void print_escaped(const char *s, size_t n, size_t max) {
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c == '\r') printf("\\r");
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    if (n > max) printf("...(%zu bytes)", n);
}

static void print_ids(const hp_tokenizer *t, const int32_t *ids, int n, int from) {
    for (int j = from; j < n && j < from + 6; j++) {
        const char *p = hp_tok_piece(t, ids[j]);
        printf(" %d(", (int)ids[j]);
        if (p) print_escaped(p, strlen(p), 24);
        printf(")");
    }
    printf(n > from + 6 ? " ...\n" : "\n");
}

static int compare_ids(const hp_tokenizer *t, const char *label, int ci, const char *what,
                       const char *text, size_t tlen, const cJSON *exp, const int32_t *got, int ngot) {
    int ne = cJSON_GetArraySize(exp);
    int32_t *ev = xmalloc((size_t)(ne ? ne : 1) * sizeof *ev);
    int k = 0;
    for (const cJSON *x = exp ? exp->child : NULL; x; x = x->next) ev[k++] = (int32_t)x->valueint;
    int pos = 0;
    while (pos < ne && pos < ngot && ev[pos] == got[pos]) pos++;
    int bad = pos != ne || pos != ngot;
    if (bad) {
        printf("%s case %d (%s): \"", label, ci, what);
        print_escaped(text, tlen, 160);
        printf("\"\n  ids differ at position %d (expected %d ids, got %d)\n  expected:", pos, ne, ngot);
        print_ids(t, ev, ne, pos);
        printf("  got:     ");
        print_ids(t, got, ngot, pos);
    }
    free(ev);
    return bad;
}

static int compare_str(const char *label, int ci, const char *what, const char *exp, size_t elen,
                       const char *got) {
    size_t glen = got ? strlen(got) : 0;
    /* decode returns a C string: an expected NUL ends the comparable part */
    size_t ecmp = strnlen(exp, elen);
    if (got && glen == ecmp && !memcmp(exp, got, ecmp)) return 0;
    printf("%s case %d: %s differs\n  expected: \"", label, ci, what);
    print_escaped(exp, ecmp, 300);
    printf("\"\n  got:      \"");
    if (got) print_escaped(got, glen, 300);
    else printf("(NULL)");
    printf("\"\n");
    return 1;
}

/* Checks every case of an expected_*.json document (and its vocabulary facts); returns the
 * number of mismatches, each printed with the text and the first differing position. */
static int check_cases(const hp_tokenizer *t, const char *label, const cJSON *doc) {
    int bad = 0, ci = 0;
    hp_err e = {{0}};
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    assert_true(cJSON_IsArray(cases));
    for (const cJSON *c = cases->child; c; c = c->next, ci++) {
        size_t tlen;
        char *text = case_bytes(c, "text", &tlen);
        assert_non_null(text);
        int32_t *ids = NULL, *plain = NULL;
        int n = 0, np = 0;
        if (hp_tok_encode(t, text, tlen, 1, &ids, &n, &e) || hp_tok_encode(t, text, tlen, 0, &plain, &np, &e))
            fail_msg("%s case %d: encode failed: %s", label, ci, e.msg);
        bad += compare_ids(t, label, ci, "add_special_tokens=True", text, tlen,
                           cJSON_GetObjectItemCaseSensitive(c, "ids"), ids, n);
        bad += compare_ids(t, label, ci, "add_special_tokens=False", text, tlen,
                           cJSON_GetObjectItemCaseSensitive(c, "ids_plain"), plain, np);
        for (int skip = 0; skip < 2; skip++) {
            size_t dlen;
            char *dexp = case_bytes(c, skip ? "decoded_skip" : "decoded", &dlen);
            assert_non_null(dexp);
            /* decode HF's ids, so that a decode check does not hinge on the encoder */
            const cJSON *eids = cJSON_GetObjectItemCaseSensitive(c, "ids");
            int ne = cJSON_GetArraySize(eids), k = 0;
            int32_t *ev = xmalloc((size_t)(ne ? ne : 1) * sizeof *ev);
            for (const cJSON *x = eids->child; x; x = x->next) ev[k++] = (int32_t)x->valueint;
            char *got = hp_tok_decode(t, ev, ne, skip);
            bad += compare_str(label, ci, skip ? "decode(skip_special_tokens=True)" : "decode()", dexp, dlen, got);
            free(got);
            free(ev);
            free(dexp);
        }
        free(ids);
        free(plain);
        free(text);
    }
    /* vocabulary facts */
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "n_ids")) && hp_tok_vocab_size(t) != v->valueint) {
        printf("%s: vocab size %d, HF %d\n", label, hp_tok_vocab_size(t), v->valueint);
        bad++;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "bos")) && hp_tok_bos(t) != v->valueint) {
        printf("%s: bos %d, HF %d\n", label, hp_tok_bos(t), v->valueint);
        bad++;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "eos")) && hp_tok_eos(t) != v->valueint) {
        printf("%s: eos %d, HF %d\n", label, hp_tok_eos(t), v->valueint);
        bad++;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "adds_bos")) && hp_tok_adds_bos(t) != cJSON_IsTrue(v)) {
        printf("%s: adds_bos %d, HF %d\n", label, hp_tok_adds_bos(t), cJSON_IsTrue(v));
        bad++;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "special_ids"))) {
        int nsp = 0;
        for (const cJSON *x = v->child; x; x = x->next, nsp++)
            if (!hp_tok_is_special(t, x->valueint)) {
                printf("%s: id %d should be special\n", label, x->valueint);
                bad++;
            }
        int mine = 0;
        for (int i = 0; i < hp_tok_vocab_size(t); i++) mine += hp_tok_is_special(t, i);
        if (mine != nsp) {
            printf("%s: %d special ids, HF %d\n", label, mine, nsp);
            bad++;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(doc, "pieces"))) {
        for (const cJSON *x = v->child; x; x = x->next) {
            int id = cJSON_GetArrayItem(x, 0)->valueint;
            const char *hx = cJSON_GetArrayItem(x, 1)->valuestring;
            size_t n = strlen(hx) / 2;
            char *exp = xmalloc(n + 1);
            for (size_t i = 0; i < n; i++) {
                unsigned b;
                sscanf(hx + 2 * i, "%2x", &b);
                exp[i] = (char)b;
            }
            exp[n] = 0;
            const char *got = hp_tok_piece(t, id);
            if (!got || strcmp(got, exp)) {
                printf("%s: piece of id %d: expected \"%s\", got \"%s\"\n", label, id, exp, got ? got : "(NULL)");
                bad++;
            }
            free(exp);
        }
    }
    if (bad) printf("%s: %d mismatches against HF\n", label, bad);
    return bad;
}

static void run_json_file(const char *path, const char *exp) {
    hp_err e = {{0}};
    n_tests_run++;
    hp_tokenizer *t = hp_tok_from_json(path, &e);
    if (!t) fail_msg("%s", e.msg);
    cJSON *doc = load_json(exp);
    int bad = check_cases(t, path, doc);
    cJSON_Delete(doc);
    hp_tok_free(t);
    assert_int_equal(bad, 0);
}

static void run_json_fixture(const char *name) {
    char path[512], exp[512];
    snprintf(path, sizeof path, FIX "/%s/tokenizer.json", name);
    snprintf(exp, sizeof exp, FIX "/expected_%s.json", name);
    run_json_file(path, exp);
}

/* The tiny tokenizers of tests/fixtures/tok/variants (the remaining supported components). */
static void test_json_variants(void **state) {
    (void)state;
    static const char *const names[] = {"spm_legacy", "spm_metaspace", "spm_strip_regex",
                                        "bl_gpt2", "bl_split", "bl_digits"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[512], exp[512];
        snprintf(path, sizeof path, FIX "/variants/%s.json", names[i]);
        snprintf(exp, sizeof exp, FIX "/expected_variant_%s.json", names[i]);
        run_json_file(path, exp);
    }
}

static void run_gguf_fixture(const char *gguf_path, const char *expected_name) {
    char exp[512];
    hp_err e = {{0}};
    hp_store st;
    snprintf(exp, sizeof exp, FIX "/expected_%s.json", expected_name);
    n_tests_run++;
    if (!hp_file_exists(gguf_path)) {
        n_tests_skipped++;
        printf("skipped: %s not found (run scripts/fetch_smollm2.sh)\n", gguf_path);
        skip();
    }
    if (hp_store_open_gguf(&st, gguf_path, &e)) fail_msg("%s", e.msg);
    hp_tokenizer *t = hp_tok_from_gguf(st.gguf, &e);
    if (!t) {
        hp_store_close(&st);
        fail_msg("%s", e.msg);
    }
    cJSON *doc = load_json(exp);
    int bad = check_cases(t, gguf_path, doc);
    cJSON_Delete(doc);
    hp_tok_free(t);
    hp_store_close(&st);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* fixtures against HF                                                                        */

static void test_json_spm_legacy(void **state) { (void)state; run_json_fixture("spm_legacy"); }
static void test_json_spm_metaspace(void **state) { (void)state; run_json_fixture("spm_metaspace"); }
static void test_json_spm_metaspace_split(void **state) { (void)state; run_json_fixture("spm_metaspace_split"); }
static void test_json_bl_llama3(void **state) { (void)state; run_json_fixture("bl_llama3"); }
static void test_json_bl_gpt2(void **state) { (void)state; run_json_fixture("bl_gpt2"); }
static void test_json_smollm2(void **state) { (void)state; run_json_fixture("smollm2"); }
static void test_gguf_spm_scores(void **state) { (void)state; run_gguf_fixture(FIX "/gguf/spm.gguf", "spm_gguf"); }
static void test_gguf_bl_gpt2(void **state) { (void)state; run_gguf_fixture(FIX "/gguf/bl_gpt2.gguf", "bl_gpt2_gguf"); }
static void test_gguf_smollm2(void **state) { (void)state; run_gguf_fixture(SMOL_GGUF, "smollm2"); }

/* The checker must notice a wrong id, a missing id and a wrong decode. */
static void test_checker_catches_corruption(void **state) {
    (void)state;
    n_tests_run++;
    hp_err e = {{0}};
    hp_tokenizer *t = hp_tok_from_json(FIX "/spm_metaspace/tokenizer.json", &e);
    if (!t) fail_msg("%s", e.msg);
    cJSON *doc = load_json(FIX "/expected_spm_metaspace.json");
    cJSON *c0 = cJSON_GetObjectItemCaseSensitive(doc, "cases")->child;
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(c0, "ids");
    cJSON_SetNumberValue(cJSON_GetArrayItem(ids, 1), cJSON_GetArrayItem(ids, 1)->valueint + 1);
    printf("(a corrupted expectation follows; its mismatch report is expected)\n");
    assert_true(check_cases(t, "corrupted", doc) >= 1);
    cJSON_Delete(doc);
    doc = load_json(FIX "/expected_spm_metaspace.json");
    c0 = cJSON_GetObjectItemCaseSensitive(doc, "cases")->child;
    cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(c0, "ids_plain"), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(c0, "decoded", cJSON_CreateString("not what HF says"));
    assert_true(check_cases(t, "corrupted", doc) >= 2);
    cJSON_Delete(doc);
    hp_tok_free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* malformed files                                                                            */

static char tmpdir[256];

static void make_tmpdir(void) {
    if (tmpdir[0]) return;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hp_test_tok.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* hp_tok_from_json must fail with a message holding the path and `want`. */
static void expect_json_error(const char *name, const char *content, size_t len, const char *want) {
    char path[400];
    hp_err e = {{0}};
    make_tmpdir();
    snprintf(path, sizeof path, "%s/%s.json", tmpdir, name);
    write_file(path, content, len);
    hp_tokenizer *t = hp_tok_from_json(path, &e);
    if (t) {
        hp_tok_free(t);
        fail_msg("%s: loaded, expected an error containing \"%s\"", name, want);
    }
    if (!strstr(e.msg, path) || !strstr(e.msg, want))
        fail_msg("%s: message \"%s\" should name the file and contain \"%s\"", name, e.msg, want);
    unlink(path);
}

#define JSON_ERR(name, text, want) expect_json_error(name, text, strlen(text), want)

static const char *good_head =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}";

static void test_bad_json(void **state) {
    (void)state;
    n_tests_run++;
    char buf[2048];
    hp_err e = {{0}};
    /* the minimal file itself loads: the errors below are the injected ones */
    make_tmpdir();
    snprintf(buf, sizeof buf, "%s/ok.json", tmpdir);
    snprintf(buf + 1024, 1024, "%s}", good_head);
    write_file(buf, buf + 1024, strlen(buf + 1024));
    hp_tokenizer *t = hp_tok_from_json(buf, &e);
    if (!t) fail_msg("minimal tokenizer.json: %s", e.msg);
    int32_t *ids;
    int n;
    assert_int_equal(hp_tok_encode(t, "abba", 4, 1, &ids, &n, &e), 0);
    assert_int_equal(n, 3); /* ab b a */
    assert_int_equal(ids[0], 2);
    free(ids);
    hp_tok_free(t);
    unlink(buf);

    /* a real file cut short */
    char *data;
    size_t len;
    assert_int_equal(hp_read_file(FIX "/spm_legacy/tokenizer.json", &data, &len, &e), 0);
    expect_json_error("truncated", data, len / 2, "not valid JSON");
    free(data);
    JSON_ERR("empty", "", "not valid JSON");
    JSON_ERR("latin1", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"caf\xe9\":0},\"merges\":[]}}", "not valid UTF-8 (byte offset 36)");
    JSON_ERR("array", "[1, 2]", "top level is not a JSON object");
    JSON_ERR("no_model", "{}", "model: expected an object");
    JSON_ERR("vocab_list", "{\"model\":{\"type\":\"BPE\",\"vocab\":[\"a\"],\"merges\":[]}}", "model.vocab: expected an object");
    JSON_ERR("vocab_str_id", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"0\"},\"merges\":[]}}", "model.vocab[\"a\"]: expected an integer");
    JSON_ERR("vocab_neg_id", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", "model.vocab[\"a\"]: integer -1 out of range");
    JSON_ERR("vocab_frac_id", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1.5},\"merges\":[]}}", "out of range");
    JSON_ERR("vocab_huge_id", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":4000000000},\"merges\":[]}}", "out of range");
    JSON_ERR("vocab_empty", "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "model.vocab is empty");
    JSON_ERR("merge_unknown", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\",\"a c\"]}}",
             "model.merges[0]: merged token \"ab\" is not in the vocabulary");
    JSON_ERR("merge_unknown_part", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\",\"b\"],[\"a\",\"c\"]]}}",
             "model.merges[1]: merge part \"c\" is not in the vocabulary");
    JSON_ERR("merge_shape", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}", "model.merges[0]: expected");
    JSON_ERR("merge_three", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b c\"]}}", "model.merges[0]: expected \"left right\"");
    JSON_ERR("merges_obj", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":{}}}", "model.merges: expected an array");
    JSON_ERR("wordpiece", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}", "model.type \"WordPiece\" is not supported");
    JSON_ERR("unigram", "{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", "model.type \"Unigram\" is not supported");
    JSON_ERR("type_num", "{\"model\":{\"type\":3,\"vocab\":{}}}", "model.type: expected a string");
    JSON_ERR("byte_fallback_str", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"byte_fallback\":\"yes\"}}",
             "model.byte_fallback: expected a boolean");

#define WITH(tail) (snprintf(buf, sizeof buf, "%s,%s}", good_head, tail), buf)
    JSON_ERR("added_id", WITH("\"added_tokens\":[{\"id\":\"x\",\"content\":\"<s>\"}]"), "added_tokens[0].id: expected an integer");
    JSON_ERR("added_content", WITH("\"added_tokens\":[{\"id\":3,\"content\":7}]"), "added_tokens[0].content: expected a string");
    JSON_ERR("added_obj", WITH("\"added_tokens\":{}"), "added_tokens: expected an array");
    JSON_ERR("added_special", WITH("\"added_tokens\":[{\"id\":3,\"content\":\"x\",\"special\":1}]"), "added_tokens[0].special: expected a boolean");
    JSON_ERR("norm_nfkc", WITH("\"normalizer\":{\"type\":\"NFKC\"}"), "normalizer: normalizer \"NFKC\" is not supported");
    JSON_ERR("norm_seq", WITH("\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"x\"},{\"type\":\"Lowercase\"}]}"),
             "normalizer.normalizers[1]: normalizer \"Lowercase\" is not supported");
    JSON_ERR("norm_replace", WITH("\"normalizer\":{\"type\":\"Replace\",\"pattern\":\" \",\"content\":\"x\"}"), "normalizer.pattern: expected");
    JSON_ERR("norm_notype", WITH("\"normalizer\":{\"prepend\":\"x\"}"), "normalizer.type: expected a string");
    JSON_ERR("pre_ws", WITH("\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"type\":\"Whitespace\"}]}"),
             "pre_tokenizer.pretokenizers[1]: pre-tokenizer \"Whitespace\" is not supported");
    JSON_ERR("pre_regex", WITH("\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(unclosed\"},\"behavior\":\"Isolated\",\"invert\":false}"),
             "pre_tokenizer.pattern: regex does not compile");
    JSON_ERR("pre_behavior", WITH("\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Sideways\"}"),
             "pre_tokenizer.behavior: unknown value \"Sideways\"");
    JSON_ERR("pre_metaspace", WITH("\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}"),
             "pre_tokenizer.replacement: expected one character");
    JSON_ERR("pre_scheme", WITH("\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"sometimes\"}"),
             "pre_tokenizer.prepend_scheme: unknown value");
    JSON_ERR("post_unknown", WITH("\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{}}"),
             "post_processor.special_tokens: no ids for \"<s>\"");
    JSON_ERR("post_range", WITH("\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[99],\"tokens\":[\"<s>\"]}}}"),
             "post-processor id 99 out of range");
    JSON_ERR("post_bert", WITH("\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"</s>\"],\"cls\":[\"<s>\",0]}"),
             "post_processor.sep: expected [token, id]");
    JSON_ERR("post_other", WITH("\"post_processor\":{\"type\":\"Mystery\"}"), "post-processor \"Mystery\" is not supported");
    JSON_ERR("dec_wp", WITH("\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\"}"), "decoder: decoder \"WordPiece\" is not supported");
    JSON_ERR("dec_strip", WITH("\"decoder\":{\"type\":\"Strip\",\"content\":\" \",\"start\":\"1\",\"stop\":0}"), "decoder.start: expected an integer");
    JSON_ERR("dec_seq", WITH("\"decoder\":{\"type\":\"Sequence\",\"decoders\":{}}"), "decoder.decoders: expected an array");
#undef WITH

    /* a missing file, and a broken tokenizer_config.json beside a good tokenizer.json */
    snprintf(buf, sizeof buf, "%s/absent.json", tmpdir);
    assert_null(hp_tok_from_json(buf, &e));
    assert_non_null(strstr(e.msg, buf));
    char sub[400], cfg[450];
    snprintf(sub, sizeof sub, "%s/cfgdir", tmpdir);
    mkdir(sub, 0700);
    snprintf(buf, sizeof buf, "%s/tokenizer.json", sub);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", sub);
    char body[512];
    snprintf(body, sizeof body, "%s}", good_head);
    write_file(buf, body, strlen(body));
    write_file(cfg, "{\"bos_token\": ", 14);
    assert_null(hp_tok_from_json(buf, &e));
    if (!strstr(e.msg, cfg)) fail_msg("message \"%s\" should name %s", e.msg, cfg);
    unlink(cfg);
    unlink(buf);
    rmdir(sub);
}

/* ---- GGUF: a minimal writer for metadata-only files ---- */

typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
} gbuf;

static void gput(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gu32(gbuf *b, uint32_t v) { gput(b, &v, 4); }
static void gu64(gbuf *b, uint64_t v) { gput(b, &v, 8); }
static void gstr(gbuf *b, const char *s) {
    gu64(b, strlen(s));
    gput(b, s, strlen(s));
}
static void gkv_str(gbuf *b, const char *k, const char *v) {
    gstr(b, k);
    gu32(b, 8);
    gstr(b, v);
}
static void gkv_strs(gbuf *b, const char *k, const char *const *v, int n) {
    gstr(b, k);
    gu32(b, 9);
    gu32(b, 8);
    gu64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) gstr(b, v[i]);
}
static void gkv_i32s(gbuf *b, const char *k, const int32_t *v, int n) {
    gstr(b, k);
    gu32(b, 9);
    gu32(b, 5);
    gu64(b, (uint64_t)n);
    gput(b, v, (size_t)n * 4);
}

/* Writes a GGUF v3 with the given key/values (already serialised, n_kv of them) and no tensors. */
static void write_gguf(const char *path, const gbuf *kvs, int n_kv) {
    gbuf b = {0};
    gput(&b, "GGUF", 4);
    gu32(&b, 3);
    gu64(&b, 0);
    gu64(&b, (uint64_t)n_kv);
    gput(&b, kvs->p, kvs->n);
    while (b.n % 32) gput(&b, "", 1);
    write_file(path, b.p, b.n);
    free(b.p);
}

static void expect_gguf_error(const char *name, const gbuf *kvs, int n_kv, const char *want) {
    char path[400];
    hp_err e = {{0}};
    hp_store st;
    make_tmpdir();
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    write_gguf(path, kvs, n_kv);
    if (hp_store_open_gguf(&st, path, &e)) fail_msg("%s: the GGUF reader refused the test file: %s", name, e.msg);
    hp_tokenizer *t = hp_tok_from_gguf(st.gguf, &e);
    if (t) {
        hp_tok_free(t);
        hp_store_close(&st);
        fail_msg("%s: loaded, expected an error containing \"%s\"", name, want);
    }
    hp_store_close(&st);
    if (!strstr(e.msg, path) || !strstr(e.msg, want))
        fail_msg("%s: message \"%s\" should name the file and contain \"%s\"", name, e.msg, want);
    unlink(path);
}

static void test_bad_gguf(void **state) {
    (void)state;
    n_tests_run++;
    static const char *const toks[] = {"a", "b", "ab", "<s>"};
    static const int32_t types[] = {1, 1, 1, 3};
    gbuf b = {0};
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "bert");
    gkv_strs(&b, "tokenizer.ggml.tokens", toks, 4);
    expect_gguf_error("model_bert", &b, 3, "tokenizer.ggml.model \"bert\" is not supported");
    b.n = 0;
    gkv_str(&b, "general.architecture", "llama");
    expect_gguf_error("no_model", &b, 1, "no tokenizer.ggml.model");
    b.n = 0;
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "gpt2");
    expect_gguf_error("no_tokens", &b, 2, "tokenizer.ggml.tokens: expected an array of strings");
    gkv_strs(&b, "tokenizer.ggml.tokens", toks, 4);
    static const char *const bad_merges[] = {"a b", "a c"};
    gkv_strs(&b, "tokenizer.ggml.merges", bad_merges, 2);
    expect_gguf_error("merge_unknown", &b, 4, "tokenizer.ggml.merges[1]: merge part \"c\" is not in the vocabulary");
    b.n = 0;
    static const char *const merges[] = {"a b"};
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "gpt2");
    gkv_strs(&b, "tokenizer.ggml.tokens", toks, 4);
    gkv_strs(&b, "tokenizer.ggml.merges", merges, 1);
    gkv_str(&b, "tokenizer.ggml.pre", "mystery-pre");
    expect_gguf_error("pre_unknown", &b, 5, "tokenizer.ggml.pre \"mystery-pre\" is not supported");
    b.n = 0;
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "gpt2");
    gkv_strs(&b, "tokenizer.ggml.tokens", toks, 4);
    gkv_i32s(&b, "tokenizer.ggml.token_type", types, 3);
    expect_gguf_error("types_short", &b, 4, "tokenizer.ggml.token_type: expected 4 integers");
    b.n = 0;
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "llama");
    gkv_strs(&b, "tokenizer.ggml.tokens", toks, 4);
    expect_gguf_error("spm_no_scores", &b, 3, "tokenizer.ggml.scores");
    b.n = 0;
    static const char *const bad_toks[] = {"a", "\xc3(", "ab"};
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "gpt2");
    gkv_strs(&b, "tokenizer.ggml.tokens", bad_toks, 3);
    expect_gguf_error("token_utf8", &b, 3, "tokenizer.ggml.tokens[1] is not valid UTF-8");

    /* and a well-formed one loads and encodes: merges and a control token */
    b.n = 0;
    gkv_str(&b, "general.architecture", "llama");
    gkv_str(&b, "tokenizer.ggml.model", "gpt2");
    gkv_strs(&b, "tokenizer.ggml.tokens", toks, 4);
    gkv_i32s(&b, "tokenizer.ggml.token_type", types, 4);
    gkv_strs(&b, "tokenizer.ggml.merges", merges, 1);
    char path[400];
    hp_err e = {{0}};
    hp_store st;
    snprintf(path, sizeof path, "%s/ok.gguf", tmpdir);
    write_gguf(path, &b, 5);
    assert_int_equal(hp_store_open_gguf(&st, path, &e), 0);
    hp_tokenizer *t = hp_tok_from_gguf(st.gguf, &e);
    if (!t) fail_msg("%s", e.msg);
    int32_t *ids;
    int n;
    assert_int_equal(hp_tok_encode(t, "ab<s>ba", 7, 1, &ids, &n, &e), 0);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 1);
    assert_int_equal(ids[3], 0);
    assert_true(hp_tok_is_special(t, 3));
    assert_int_equal(hp_tok_kind_of(t), HP_TOK_BYTELEVEL_BPE);
    free(ids);
    hp_tok_free(t);
    hp_store_close(&st);
    unlink(path);
    free(b.p);
}

/* ------------------------------------------------------------------------------------------ */
/* properties                                                                                 */

/* decode(encode(x)) == x for a byte-level tokenizer without prefix space, for any valid UTF-8
 * x that holds no added-token text; for arbitrary bytes it equals x with each invalid
 * subsequence replaced by U+FFFD (compared by re-encoding: ids equal). Seeded, seed printed. */
static void test_roundtrip_random_bytes(void **state) {
    (void)state;
    n_tests_run++;
    unsigned seed = (unsigned)time(NULL);
    printf("roundtrip seed %u\n", seed);
    srand(seed);
    hp_err e = {{0}};
    hp_tokenizer *t = hp_tok_from_json(FIX "/bl_llama3/tokenizer.json", &e);
    hp_tokenizer *s = hp_tok_from_json(FIX "/spm_metaspace/tokenizer.json", &e);
    if (!t || !s) fail_msg("%s", e.msg);
    static const char *const frags[] = {"a", "Z", " ", "  ", "\n", "\t", "é", "ß", "中", "👍🏽", "1", "23", "'s",
                                        "\xff", "\xc3", "\xe4\xbd", "\xed\xa0\x80", "\x80", "\xf0\x9f", "\x00", "x<", "|", "▁"};
    const int nf = (int)(sizeof frags / sizeof *frags);
    for (int it = 0; it < 400; it++) {
        char text[256];
        size_t len = 0;
        int valid = 1, k = 1 + rand() % 20;
        for (int j = 0; j < k; j++) {
            int f = rand() % nf;
            size_t fl = f == 19 ? 1 : strlen(frags[f]); /* "\x00" is one NUL byte */
            if (f >= 13 && f <= 19) valid = 0; /* invalid UTF-8, or NUL (ends the decoded C string) */
            memcpy(text + len, frags[f], fl);
            len += fl;
        }
        int32_t *ids, *ids2, *sids;
        int n, n2, sn;
        assert_int_equal(hp_tok_encode(t, text, len, 0, &ids, &n, &e), 0);
        assert_int_equal(hp_tok_encode(s, text, len, 1, &sids, &sn, &e), 0);
        char *back = hp_tok_decode(t, ids, n, 0);
        char *sback = hp_tok_decode(s, sids, sn, 1);
        assert_non_null(back);
        assert_non_null(sback);
        if (valid) {
            if (strlen(back) != len || memcmp(back, text, len)) {
                printf("roundtrip of \"");
                print_escaped(text, len, 200);
                printf("\" gave \"%s\"\n", back);
                fail();
            }
        } else {
            /* lossy: the decoded text is valid UTF-8 and encodes to the same ids */
            assert_int_equal(hp_tok_encode(t, back, strlen(back), 0, &ids2, &n2, &e), 0);
            if (!memchr(text, 0, len)) {
                assert_int_equal(n2, n);
                assert_memory_equal(ids2, ids, (size_t)n * sizeof *ids);
            }
            free(ids2);
        }
        free(back);
        free(sback);
        free(ids);
        free(sids);
    }
    hp_tok_free(t);
    hp_tok_free(s);
}

/* API corner cases: empty input, NULL text, out-of-range ids, lookups. */
static void test_api_edges(void **state) {
    (void)state;
    n_tests_run++;
    hp_err e = {{0}};
    hp_tokenizer *t = hp_tok_from_json(FIX "/spm_legacy/tokenizer.json", &e);
    if (!t) fail_msg("%s", e.msg);
    int32_t *ids;
    int n;
    assert_int_equal(hp_tok_encode(t, NULL, 0, 1, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], hp_tok_bos(t));
    free(ids);
    assert_int_equal(hp_tok_encode(t, NULL, 3, 1, &ids, &n, &e), -1);
    assert_non_null(strstr(e.msg, "spm_legacy/tokenizer.json"));
    int32_t odd[] = {-5, 1 << 30, hp_tok_id(t, "\xE2\x96\x81the")};
    char *d = hp_tok_decode(t, odd, 3, 0);
    assert_string_equal(d, "the"); /* unknown ids are dropped, as HF does */
    free(d);
    assert_null(hp_tok_piece(t, -1));
    assert_null(hp_tok_piece(t, hp_tok_vocab_size(t)));
    assert_int_equal(hp_tok_id(t, "<s>"), 1);
    assert_int_equal(hp_tok_id(t, "no such piece"), -1);
    assert_int_equal(hp_tok_id(t, "<0x0A>"), 3 + 10);
    assert_true(hp_tok_is_special(t, 1));
    assert_false(hp_tok_is_special(t, 3 + 10));
    assert_false(hp_tok_is_special(t, -1));
    assert_int_equal(hp_tok_kind_of(t), HP_TOK_SPM_BPE);
    hp_tok_free(t);
}

/* Encoding 10 kB must take well under 50 ms (median of 7 runs): SmolLM2's 49k byte-level
 * vocabulary, and the legacy SentencePiece layout where, with no pre-tokenizer, the whole
 * normalized text is one BPE word. */
static void time_10kb(const char *name) {
    char path[512], exp[512];
    hp_err e = {{0}};
    snprintf(path, sizeof path, FIX "/%s/tokenizer.json", name);
    snprintf(exp, sizeof exp, FIX "/expected_%s.json", name);
    hp_tokenizer *t = hp_tok_from_json(path, &e);
    if (!t) fail_msg("%s", e.msg);
    cJSON *doc = load_json(exp);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    const cJSON *last = NULL;
    for (const cJSON *x = c->child; x; x = x->next) last = x;
    size_t len;
    char *text = case_bytes(last, "text", &len);
    assert_true(len > 9000);
    double ms[7];
    for (int r = 0; r < 7; r++) {
        struct timespec a, b;
        int32_t *ids;
        int n;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(hp_tok_encode(t, text, len, 1, &ids, &n, &e), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        free(ids);
        ms[r] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    }
    for (int i = 1; i < 7; i++)
        for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) {
            double tmp = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = tmp;
        }
    printf("%s: encode %zu bytes: median %.2f ms (min %.2f, max %.2f)\n", name, len, ms[3], ms[0], ms[6]);
    assert_true(ms[3] < 50.0);
    free(text);
    cJSON_Delete(doc);
    hp_tok_free(t);
}

static void test_speed_10kb(void **state) {
    (void)state;
    n_tests_run++;
    time_10kb("smollm2");
    time_10kb("spm_legacy");
}

int main(void) {
    if (!hp_is_dir(FIX)) {
        fprintf(stderr, "test_tokenizer: %s not found; run from the repository root\n", FIX);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_spm_legacy),
        cmocka_unit_test(test_json_spm_metaspace),
        cmocka_unit_test(test_json_spm_metaspace_split),
        cmocka_unit_test(test_json_bl_llama3),
        cmocka_unit_test(test_json_bl_gpt2),
        cmocka_unit_test(test_json_smollm2),
        cmocka_unit_test(test_json_variants),
        cmocka_unit_test(test_gguf_spm_scores),
        cmocka_unit_test(test_gguf_bl_gpt2),
        cmocka_unit_test(test_gguf_smollm2),
        cmocka_unit_test(test_checker_catches_corruption),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_gguf),
        cmocka_unit_test(test_roundtrip_random_bytes),
        cmocka_unit_test(test_api_edges),
        cmocka_unit_test(test_speed_10kb),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (tmpdir[0]) rmdir(tmpdir);
    if (failed) return 1;
    if (n_tests_run > 0 && n_tests_skipped == n_tests_run) return 77; /* everything skipped */
    return 0;
}
