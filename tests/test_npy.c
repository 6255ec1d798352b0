/* test_npy.c: the .npy reader and writer (weights/npy.c). Reads files NumPy wrote
 * (tests/fixtures/npy, made by tests/ref/make_npy_fixtures.py; header versions 1.0, 2.0, 3.0),
 * round-trips every dtype and rank through the writer, and feeds truncated, corrupt and
 * hand-written headers that must be rejected with a message naming the file. Run from the
 * repository root (or set HP_SOURCE_DIR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "npy.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static const char *fixture(const char *name) {
    static char buf[512];
    const char *root = getenv("HP_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/tests/fixtures/npy/%s", root ? root : ".", name);
    return buf;
}

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_raw(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* A .npy image with the given header dict text, version and `ndata` bytes of data (0x11),
 * header padded to `align` bytes (NumPy pads to 64; older writers to 16). */
static void write_npy_text(const char *path, int major, const char *dict, size_t ndata, size_t align) {
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict);
    size_t total = (pre + len + 1 + align - 1) / align * align, hlen = total - pre;
    unsigned char *b = malloc(total + ndata);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    if (major == 1) {
        b[8] = hlen & 0xff;
        b[9] = (hlen >> 8) & 0xff;
    } else {
        for (int i = 0; i < 4; i++) b[8 + i] = (hlen >> (8 * i)) & 0xff;
    }
    memcpy(b + pre, dict, len);
    memset(b + pre + len, ' ', hlen - len - 1);
    b[total - 1] = '\n';
    memset(b + total, 0x11, ndata);
    write_raw(path, b, total + ndata);
    free(b);
}

/* Every reader must refuse the file, with the path in the message. */
static void expect_reject(const char *path, const char *why) {
    hp_err e = {{0}};
    float *f = NULL;
    double *d = NULL;
    int32_t *i = NULL;
    int nd = -1;
    int64_t sh[HP_NPY_MAXDIM];
    int rf = hp_npy_read_f32(path, &f, &nd, sh, &e);
    if (rf != -1 || !strstr(e.msg, path)) fail_msg("%s: f32 reader: rc %d, msg '%s'", why, rf, e.msg);
    assert_null(f);
    e.msg[0] = 0;
    int rd = hp_npy_read_f64(path, &d, &nd, sh, &e);
    if (rd != -1 || !strstr(e.msg, path)) fail_msg("%s: f64 reader: rc %d, msg '%s'", why, rd, e.msg);
    assert_null(d);
    e.msg[0] = 0;
    int ri = hp_npy_read_i32(path, &i, &nd, sh, &e);
    if (ri != -1 || !strstr(e.msg, path)) fail_msg("%s: i32 reader: rc %d, msg '%s'", why, ri, e.msg);
    assert_null(i);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hp_test_npy_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- files written by NumPy ---------------------------------------------------------------- */

static void test_fixtures(void **state) {
    (void)state;
    hp_err e = {{0}};
    int nd;
    int64_t sh[HP_NPY_MAXDIM];

    float *f = NULL;
    assert_int_equal(hp_npy_read_f32(fixture("f4_2x3_v1.npy"), &f, &nd, sh, &e), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(sh[0], 2);
    assert_int_equal(sh[1], 3);
    const float f4[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
    for (int i = 0; i < 6; i++) assert_true(f[i] == f4[i]);
    free(f);
    double *d = NULL;
    assert_int_equal(hp_npy_read_f64(fixture("f4_2x3_v1.npy"), &d, &nd, sh, &e), 0);
    for (int i = 0; i < 6; i++) assert_true(d[i] == (double)f4[i]);
    free(d);

    const double f8[5] = {1.5, -2.25, 0.1, 0.0, 3e10};
    assert_int_equal(hp_npy_read_f64(fixture("f8_5_v2.npy"), &d, &nd, sh, &e), 0);
    assert_int_equal(nd, 1);
    assert_int_equal(sh[0], 5);
    for (int i = 0; i < 5; i++) assert_true(d[i] == f8[i]);
    free(d);
    assert_int_equal(hp_npy_read_f32(fixture("f8_5_v2.npy"), &f, &nd, sh, &e), 0);
    for (int i = 0; i < 5; i++) assert_true(f[i] == (float)f8[i]);
    free(f);

    int32_t *iv = NULL;
    assert_int_equal(hp_npy_read_i32(fixture("i8_2x2_v3.npy"), &iv, &nd, sh, &e), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(sh[0], 2);
    assert_int_equal(sh[1], 2);
    const int32_t i8[4] = {1, -2, 3, INT32_MAX};
    for (int i = 0; i < 4; i++) assert_int_equal(iv[i], i8[i]);
    free(iv);

    assert_int_equal(hp_npy_read_f32(fixture("f4_scalar_v1.npy"), &f, &nd, sh, &e), 0);
    assert_int_equal(nd, 0);
    assert_true(f[0] == 3.5f);
    free(f);

    /* Float files are not integer arrays and vice versa. */
    const char *p = fixture("f4_2x3_v1.npy");
    iv = NULL;
    assert_int_equal(hp_npy_read_i32(p, &iv, &nd, sh, &e), -1);
    assert_non_null(strstr(e.msg, p));
    assert_null(iv);
    p = fixture("i8_2x2_v3.npy");
    assert_int_equal(hp_npy_read_f32(p, &f, &nd, sh, &e), -1);
    assert_non_null(strstr(e.msg, p));
}

/* ---- writer -------------------------------------------------------------------------------- */

static void check_layout(const char *path, size_t nbytes) {
    size_t n;
    unsigned char *b = read_raw(path, &n);
    assert_true(n >= 10 + nbytes);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
    assert_int_equal(10 + hlen + nbytes, n);
    assert_int_equal((10 + hlen) % 64, 0); /* data 64-byte aligned, as the format asks */
    assert_int_equal(b[10 + hlen - 1], '\n');
    free(b);
}

static void test_roundtrip(void **state) {
    (void)state;
    hp_err e = {{0}};
    static const struct {
        int ndim;
        int64_t shape[HP_NPY_MAXDIM];
    } cases[] = {
        {0, {0}}, {1, {5}}, {2, {3, 4}}, {3, {2, 0, 3}}, {1, {0}}, {8, {1, 2, 1, 3, 1, 1, 2, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int ndim = cases[c].ndim;
        size_t n = 1;
        for (int i = 0; i < ndim; i++) n *= (size_t)cases[c].shape[i];
        float *f = malloc((n ? n : 1) * sizeof *f);
        double *d = malloc((n ? n : 1) * sizeof *d);
        int32_t *iv = malloc((n ? n : 1) * sizeof *iv);
        for (size_t i = 0; i < n; i++) {
            f[i] = (float)i * 0.37f - 1.0f;
            d[i] = (double)i * 1e-3 - 7e20;
            iv[i] = (int32_t)(i * 2654435761u);
        }
        const char *pf = tmp_path("rt_f.npy"), *pd = tmp_path("rt_d.npy"), *pi = tmp_path("rt_i.npy");
        assert_int_equal(hp_npy_write_f32(pf, f, ndim, cases[c].shape, &e), 0);
        assert_int_equal(hp_npy_write_f64(pd, d, ndim, cases[c].shape, &e), 0);
        assert_int_equal(hp_npy_write_i32(pi, iv, ndim, cases[c].shape, &e), 0);
        check_layout(pf, n * 4);
        check_layout(pd, n * 8);
        check_layout(pi, n * 4);

        int nd;
        int64_t sh[HP_NPY_MAXDIM];
        float *f2 = NULL;
        double *d2 = NULL;
        int32_t *i2 = NULL;
        assert_int_equal(hp_npy_read_f32(pf, &f2, &nd, sh, &e), 0);
        assert_int_equal(nd, ndim);
        for (int i = 0; i < ndim; i++) assert_int_equal(sh[i], cases[c].shape[i]);
        assert_non_null(f2);
        if (n) assert_memory_equal(f, f2, n * sizeof *f);
        assert_int_equal(hp_npy_read_f64(pd, &d2, &nd, sh, &e), 0);
        if (n) assert_memory_equal(d, d2, n * sizeof *d);
        assert_int_equal(hp_npy_read_i32(pi, &i2, &nd, sh, &e), 0);
        if (n) assert_memory_equal(iv, i2, n * sizeof *iv);
        free(f2);
        free(d2);
        free(i2);
        /* f32 written, read as f64: exact widening. */
        assert_int_equal(hp_npy_read_f64(pf, &d2, &nd, sh, &e), 0);
        for (size_t i = 0; i < n; i++) assert_true(d2[i] == (double)f[i]);
        free(d2);
        free(f);
        free(d);
        free(iv);
    }
    /* Overwriting is atomic and leaves no temporary behind. */
    const float one = 1.0f;
    const int64_t s1 = 1;
    assert_int_equal(hp_npy_write_f32(tmp_path("rt_f.npy"), &one, 1, &s1, &e), 0);
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    struct dirent *de;
    while ((de = readdir(dir))) assert_null(strstr(de->d_name, ".tmp"));
    closedir(dir);
}

static void test_write_errors(void **state) {
    (void)state;
    hp_err e = {{0}};
    const float x[2] = {1, 2};
    const int64_t neg[2] = {2, -1}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
    const char *p = tmp_path("werr.npy");
    assert_int_equal(hp_npy_write_f32(p, x, 2, neg, &e), -1);
    assert_non_null(strstr(e.msg, p));
    assert_int_equal(hp_npy_write_f32(p, x, 9, nine, &e), -1);
    assert_non_null(strstr(e.msg, p));
    const int64_t huge[2] = {INT64_MAX, 4};
    assert_int_equal(hp_npy_write_f32(p, x, 2, huge, &e), -1);
    assert_non_null(strstr(e.msg, p));
    assert_int_equal(access(p, F_OK), -1); /* nothing left behind */
    /* Missing directories are created, but not below a regular file. */
    const int64_t two = 2;
    const char *plain = tmp_path("plainfile");
    assert_int_equal(hp_npy_write_f32(plain, x, 1, &two, &e), 0);
    char nodir[4096];
    snprintf(nodir, sizeof nodir, "%s/sub/x.npy", plain);
    assert_int_equal(hp_npy_write_f32(nodir, x, 1, &two, &e), -1);
    assert_non_null(strstr(e.msg, nodir));
}

/* ---- corrupt and hand-written files ------------------------------------------------------------ */

static void test_truncations(void **state) {
    (void)state;
    hp_err e = {{0}};
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    const int64_t sh[2] = {3, 4};
    const char *good = tmp_path("good.npy"), *bad = tmp_path("cut.npy");
    assert_int_equal(hp_npy_write_f32(good, x, 2, sh, &e), 0);
    size_t n;
    unsigned char *b = read_raw(good, &n);
    /* Every prefix of a valid file, from empty to one byte short, must be rejected. */
    for (size_t len = 0; len < n; len++) {
        char why[64];
        snprintf(why, sizeof why, "truncated to %zu of %zu bytes", len, n);
        write_raw(bad, b, len);
        expect_reject(bad, why);
    }
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    write_raw(bad, longer, n + 1);
    expect_reject(bad, "one extra data byte");
    free(longer);

    unsigned char *c = malloc(n);
    struct {
        size_t off;
        unsigned char val;
        const char *why;
    } flips[] = {
        {0, 0x92, "bad magic byte 0"},  {5, 'Z', "bad magic byte 5"},
        {6, 4, "version 4.0"},          {7, 1, "version 1.1"},
        {8, 0xff, "header length too large"}, {9, 0x7f, "header length far too large"},
        {10, '[', "dict does not open with {"},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(c, b, n);
        c[flips[i].off] = flips[i].val;
        write_raw(bad, c, n);
        expect_reject(bad, flips[i].why);
    }
    /* Header bytes replaced one at a time by a quote: breaks the dict grammar wherever it lands
     * in a token (the padding spaces are the exception and are skipped). */
    for (size_t off = 10; off < 10 + 60; off++) {
        memcpy(c, b, n);
        if (c[off] == ' ' || c[off] == '\'') continue;
        c[off] = '\'';
        write_raw(bad, c, n);
        char why[64];
        snprintf(why, sizeof why, "quote at header byte %zu", off);
        hp_err e2 = {{0}};
        float *f = NULL;
        int nd;
        int64_t s2[HP_NPY_MAXDIM];
        if (hp_npy_read_f32(bad, &f, &nd, s2, &e2) == 0) {
            /* Only a change that keeps a valid header may pass (none exists here). */
            fail_msg("%s: accepted", why);
        }
        assert_non_null(strstr(e2.msg, bad));
    }
    free(c);
    free(b);
}

static void test_headers(void **state) {
    (void)state;
    const char *p = tmp_path("hand.npy");
    static const struct {
        const char *dict;
        size_t ndata;
        const char *why;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", 48, "fortran order"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", 48, "big-endian"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }", 24, "float16"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }", 12, "uint8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (5), }", 20, "(5) is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, -4), }", 48, "negative dim"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }",
         48, "shape overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 48, "dim overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 4, "9 dims"},
        {"{'descr': '<f4', 'fortran_order': False, }", 48, "no shape"},
        {"{'fortran_order': False, 'shape': (3, 4), }", 48, "no descr"},
        {"{'descr': '<f4', 'shape': (3, 4), }", 48, "no fortran_order"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 48, "dup key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1, }", 48, "unknown key"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (3, 4), }", 48, "unbalanced quote"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), ", 48, "unclosed dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } x", 48, "trailing garbage"},
        {"{'descr': '<f4', 'fortran_order': Nope, 'shape': (3, 4), }", 48, "bad bool"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 47, "data one byte short"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", 52, "data 4 bytes long"},
        {"", 0, "empty header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_npy_text(p, 1, bad[i].dict, bad[i].ndata, 64);
        expect_reject(p, bad[i].why);
    }

    /* Valid variants NumPy accepts: other key order, double quotes, no trailing comma, no
     * spaces, 16-byte padding (old writers), version 2.0. Data bytes are 0x11 each. */
    static const struct {
        const char *dict;
        int major;
        size_t align;
    } good[] = {
        {"{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}", 1, 64},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,4)}", 1, 16},
        {"{'descr':'<f4','fortran_order':False,'shape':(3,4,),}", 2, 64},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        write_npy_text(p, good[i].major, good[i].dict, 48, good[i].align);
        hp_err e = {{0}};
        float *f = NULL;
        int nd;
        int64_t sh[HP_NPY_MAXDIM];
        if (hp_npy_read_f32(p, &f, &nd, sh, &e)) fail_msg("valid header %zu rejected: %s", i, e.msg);
        assert_int_equal(nd, 2);
        assert_int_equal(sh[0], 3);
        assert_int_equal(sh[1], 4);
        uint32_t u;
        memcpy(&u, &f[11], 4);
        assert_int_equal(u, 0x11111111u);
        free(f);
    }
}

static void test_conversion_ranges(void **state) {
    (void)state;
    hp_err e = {{0}};
    int nd;
    int64_t sh[HP_NPY_MAXDIM];
    const int64_t two = 2;
    const double big[2] = {1.0, 1e300};
    const char *p = tmp_path("big.npy");
    assert_int_equal(hp_npy_write_f64(p, big, 1, &two, &e), 0);
    float *f = NULL;
    assert_int_equal(hp_npy_read_f32(p, &f, &nd, sh, &e), -1); /* beyond float range */
    assert_non_null(strstr(e.msg, p));
    assert_null(f);

    /* int64 beyond int32: hand-written since the writer only writes int32. */
    const char *q = tmp_path("i8.npy");
    write_npy_text(q, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", 8, 64);
    int32_t *iv = NULL;
    assert_int_equal(hp_npy_read_i32(q, &iv, &nd, sh, &e), -1); /* 0x1111111111111111 */
    assert_non_null(strstr(e.msg, q));

    const char *missing = tmp_path("missing.npy");
    assert_int_equal(hp_npy_read_f32(missing, &f, &nd, sh, &e), -1);
    assert_non_null(strstr(e.msg, missing));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),     cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_write_errors), cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_headers),      cmocka_unit_test(test_conversion_ranges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
