/* test_image.c: image decoding (weights/image.c) and the LLaVA-NeXT image processor
 * (host/model/llava_proc.c) against PIL 9.4 and Hugging Face transformers 4.46.3, using the fixtures
 * that tests/ref/make_image_fixtures.py wrote into tests/fixtures/images (see its README.md):
 *   - every fixture decodes to PIL's convert("RGB") pixels (PNG exactly, JPEG within TOL_JPEG);
 *   - broken files (truncated at every length, corrupt, random bytes, empty, text, GIF,
 *     oversized, bytes flipped at random) fail with a message naming the file, never crash;
 *   - pixel_values equal HF's for the small config (crop 32) and for llava-v1.6's (crop 336),
 *     for every fixture and for synthetic noise images of 72 sizes (TOL_RESAMPLE below);
 *   - image-token counts, grid and unpadded shapes equal HF's for ~870 sizes (transformers
 *     4.46.3's model code where it agrees with its processor, else the processor and current
 *     transformers: see hp_llava_num_image_tokens);
 *   - a one-pixel change of the input is caught (the checks are not vacuous).
 * Run from the repository root (or set HP_SOURCE_DIR); HP_SEED fixes the random seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "image.h"
#include "llava_proc.h"
#include "npy.h"

/* JPEG: PIL decodes with the same libjpeg-turbo (ISLOW IDCT, fancy upsampling) and settings, so
 * the pixels are identical here (the test prints how many images were bit-exact). A different
 * libjpeg build may differ: libjpeg 9's upsampling and non-SIMD/SIMD colour conversion paths
 * round differently by up to 1-2 levels per channel, hence max 2 and a mean well below 1. */
#define TOL_JPEG_MAX 2
#define TOL_JPEG_MEAN 0.25
/* Resampling: the C code performs PIL's operations in PIL's order (double weights, 22-bit fixed
 * point, 8-bit rounding and clipping after each pass), and the normalisation in float32 like
 * numpy, so the result is bit-identical here (the checksum of the whole tensor must match before
 * the fallback is consulted). A compiler that fuses multiply-adds in the weight computation can
 * move a weight by one unit in 2^22, which flips a uint8 rounding only for sums within 2^-22 of
 * .5: at most 1 level, on a tiny fraction of elements. After normalisation one level is
 * 1/255/std <= 0.0152. */
#define TOL_RESAMPLE_LEVELS 1
#define TOL_RESAMPLE_FRACTION 1e-3

static unsigned g_seed;
static cJSON *g_manifest;
static char g_tmp[256];
static int g_inexact; /* comparisons that passed only through a tolerance */

static const char *src_path(const char *rel) {
    static char buf[8][1024];
    static int slot;
    char *p = buf[slot++ % 8];
    const char *root = getenv("HP_SOURCE_DIR");
    snprintf(p, 1024, "%s/tests/fixtures/images/%s", root ? root : ".", rel);
    return p;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 512, "%s/%s", g_tmp, name);
    return p;
}

static uint8_t *read_all(const char *path, size_t *n) {
    char *d;
    hp_err e;
    if (hp_read_file(path, &d, n, &e)) fail_msg("%s", e.msg);
    return (uint8_t *)d;
}

static void write_all(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(d, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The fixtures' checksum (make_image_fixtures.py mixsum64): sum of (b[i] + 1) * splitmix64 of
 * the position, mod 2^64. */
static uint64_t mixsum64(const uint8_t *b, size_t n) {
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        h += ((uint64_t)b[i] + 1) * z;
    }
    return h;
}

static uint64_t hex64(const char *s) { return strtoull(s, NULL, 16); }

static void load_cfg(const char *name, hp_llava_proc_cfg *c) {
    const cJSON *cf = cJSON_GetObjectItem(cJSON_GetObjectItem(g_manifest, "configs"), name);
    assert_non_null(cf);
    int crop = cJSON_GetObjectItem(cf, "crop")->valueint, patch = cJSON_GetObjectItem(cf, "patch")->valueint;
    hp_llava_proc_defaults(c, crop, patch);
    const cJSON *pp = cJSON_GetObjectItem(cf, "pinpoints");
    c->n_pinpoints = cJSON_GetArraySize(pp);
    for (int i = 0; i < c->n_pinpoints; i++) {
        c->pinpoints[i][0] = cJSON_GetArrayItem(cJSON_GetArrayItem(pp, i), 0)->valueint;
        c->pinpoints[i][1] = cJSON_GetArrayItem(cJSON_GetArrayItem(pp, i), 1)->valueint;
    }
}

/* HF's float for each byte and channel is the normalisation of that byte; maps an output float
 * back to its byte, or -1 if it is none of them (unwritten, NaN, or a different formula). */
typedef struct norm_lut {
    float v[3][256];
} norm_lut;

static void make_lut(const hp_llava_proc_cfg *c, norm_lut *l) {
    for (int ch = 0; ch < 3; ch++)
        for (int b = 0; b < 256; b++) l->v[ch][b] = ((float)(b * (1.0 / 255.0)) - c->mean[ch]) / c->std[ch];
}

static int to_byte(const norm_lut *l, int ch, float x) {
    int lo = 0, hi = 255; /* increasing in b */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (l->v[ch][mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return l->v[ch][lo] == x ? lo : -1;
}

/* The uint8 stack [n, 3, s, s] behind a pixel tensor; fails on any element that is not a
 * normalised byte. */
static uint8_t *pixels_to_bytes(const hp_pixels *p, const hp_llava_proc_cfg *c) {
    norm_lut l;
    make_lut(c, &l);
    size_t plane = (size_t)p->size * p->size, n = (size_t)p->n_tiles * 3 * plane;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        int v = to_byte(&l, (int)(i / plane % 3), p->data[i]);
        if (v < 0) fail_msg("pixel_values[%zu] = %.9g is not the normalisation of a byte", i, p->data[i]);
        b[i] = (uint8_t)v;
    }
    return b;
}

/* Compares byte stacks under TOL_RESAMPLE; returns the number of differing elements. */
static size_t compare_levels(const char *what, const uint8_t *got, const uint8_t *ref, size_t n) {
    size_t ndiff = 0, worst = 0;
    int maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got[i] - (int)ref[i]);
        if (d) ndiff++;
        if (d > maxd) maxd = d, worst = i;
    }
    if (maxd > TOL_RESAMPLE_LEVELS || ndiff > TOL_RESAMPLE_FRACTION * n)
        fail_msg("%s: %zu of %zu elements differ, max %d levels at %zu (got %d, HF %d)", what, ndiff, n, maxd,
                 worst, got[worst], ref[worst]);
    return ndiff;
}

static int setup(void **state) {
    (void)state;
    const char *s = getenv("HP_SEED");
    g_seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    srand(g_seed);
    printf("test_image: seed %u (set HP_SEED to repeat)\n", g_seed);
    size_t n;
    char *txt = (char *)read_all(src_path("manifest.json"), &n);
    g_manifest = cJSON_Parse(txt);
    free(txt);
    if (!g_manifest) return -1;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hp_test_image_XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd)) return -1;
    cJSON_Delete(g_manifest);
    if (g_inexact) printf("test_image: %d comparisons passed by tolerance, not bit-exact\n", g_inexact);
    return 0;
}

/* ------------------------------------------------------------------ decoding */

static void test_decode_matches_pil(void **state) {
    (void)state;
    const cJSON *im;
    int n_png = 0, n_jpeg = 0, jpeg_exact = 0;
    cJSON_ArrayForEach(im, cJSON_GetObjectItem(g_manifest, "images")) {
        const char *file = cJSON_GetObjectItem(im, "file")->valuestring;
        const char *fmt = cJSON_GetObjectItem(im, "format")->valuestring;
        int w = cJSON_GetObjectItem(im, "w")->valueint, h = cJSON_GetObjectItem(im, "h")->valueint;
        int s = cJSON_GetObjectItem(im, "rgb_stride")->valueint;
        hp_image img;
        hp_err e;
        if (hp_image_load(src_path(file), &img, &e)) fail_msg("%s", e.msg);
        if (img.w != w || img.h != h) fail_msg("%s: %dx%d, PIL %dx%d", file, img.w, img.h, w, h);
        size_t nref;
        uint8_t *ref = read_all(src_path(cJSON_GetObjectItem(im, "rgb")->valuestring), &nref);
        int rw = (w + s - 1) / s, rh = (h + s - 1) / s;
        assert_int_equal(nref, (size_t)rw * rh * 3);
        int maxd = 0;
        double sumd = 0;
        for (int y = 0; y < rh; y++)
            for (int x = 0; x < rw; x++)
                for (int c = 0; c < 3; c++) {
                    int d = abs(img.rgb[((size_t)y * s * w + (size_t)x * s) * 3 + c] - ref[((size_t)y * rw + x) * 3 + c]);
                    if (d > maxd) maxd = d;
                    sumd += d;
                }
        int exact = mixsum64(img.rgb, (size_t)w * h * 3) == hex64(cJSON_GetObjectItem(im, "rgb_mix")->valuestring);
        if (!strcmp(fmt, "png")) {
            n_png++;
            if (!exact || maxd) fail_msg("%s (PIL mode %s): differs from PIL by up to %d", file,
                                         cJSON_GetObjectItem(im, "pil_mode")->valuestring, maxd);
        } else {
            n_jpeg++;
            jpeg_exact += exact;
            double mean = sumd / nref;
            if (maxd > TOL_JPEG_MAX || mean > TOL_JPEG_MEAN)
                fail_msg("%s: differs from PIL by max %d, mean %.3f", file, maxd, mean);
            if (!exact) g_inexact++;
        }
        free(ref);
        hp_image_free(&img);
    }
    printf("decode: %d PNG bit-exact with PIL, %d of %d JPEG bit-exact\n", n_png, jpeg_exact, n_jpeg);
    assert_true(n_png >= 20 && n_jpeg >= 7);
}

static void expect_fail(const char *path, const char *why) {
    hp_image img = {1, 1, (uint8_t *)1};
    hp_err e = {{0}};
    if (!hp_image_load(path, &img, &e)) fail_msg("%s (%s) decoded as %dx%d", path, why, img.w, img.h);
    if (!strstr(e.msg, path)) fail_msg("%s (%s): message does not name the file: %s", path, why, e.msg);
    assert_null(img.rgb);
}

static void expect_fail_msg(const char *path, const char *why, const char *needle) {
    hp_image img;
    hp_err e = {{0}};
    if (!hp_image_load(path, &img, &e)) fail_msg("%s (%s) decoded as %dx%d", path, why, img.w, img.h);
    if (!strstr(e.msg, path) || !strstr(e.msg, needle))
        fail_msg("%s (%s): expected a message naming the file and '%s': %s", path, why, needle, e.msg);
}

static void test_bad_files(void **state) {
    (void)state;
    const cJSON *b;
    int n = 0;
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(g_manifest, "bad")) {
        const char *file = cJSON_GetObjectItem(b, "file")->valuestring;
        if (cJSON_IsTrue(cJSON_GetObjectItem(b, "pil_ok")))
            expect_fail_msg(src_path(file), "PIL reads it, we support PNG/JPEG only", "not supported");
        else
            expect_fail(src_path(file), cJSON_GetObjectItem(b, "pil_error")->valuestring);
        n++;
    }
    assert_true(n >= 10);
    expect_fail_msg(src_path("bad/truncated.png"), "truncated", "truncated");
    expect_fail_msg(src_path("bad/truncated.jpg"), "truncated", "truncated");
    expect_fail_msg(src_path("bad/no_eoi.jpg"), "missing EOI: PIL fails too", "truncated");
    expect_fail_msg(src_path("bad/empty.png"), "empty", "empty");
    expect_fail_msg(src_path("bad/text.png"), "text", "not an image");
    expect_fail_msg(src_path("bad/bad_crc.png"), "IDAT CRC", "corrupt");
    expect_fail_msg(tmp_path("does_not_exist.png"), "missing", "cannot open");
    expect_fail_msg(g_tmp, "directory", "not a regular file");

    /* Random short garbage, and garbage behind each signature. */
    uint8_t buf[64];
    for (int len = 1; len <= 64; len += 3) {
        for (int i = 0; i < len; i++) buf[i] = (uint8_t)rand();
        write_all(tmp_path("garbage.bin"), buf, (size_t)len);
        expect_fail(tmp_path("garbage.bin"), "random bytes");
        memcpy(buf, "\x89PNG\r\n\x1a\n", len < 8 ? (size_t)len : 8);
        write_all(tmp_path("garbage.png"), buf, (size_t)len);
        expect_fail(tmp_path("garbage.png"), "PNG signature + random bytes");
        memcpy(buf, "\xFF\xD8\xFF", len < 3 ? (size_t)len : 3);
        write_all(tmp_path("garbage.jpg"), buf, (size_t)len);
        expect_fail(tmp_path("garbage.jpg"), "JPEG signature + random bytes");
    }
}

/* Every proper prefix of a PNG and a JPEG (step 1 for the small PNG) must fail cleanly. */
static void test_truncated_every_length(void **state) {
    (void)state;
    const char *files[] = {"tiny_20x13.png", "adam7_rgb_33x27.png", "grey1_13x7.png", "chelsea.jpg",
                           "coffee_prog.jpg", "astronaut_cmyk.jpg"};
    for (int f = 0; f < 6; f++) {
        size_t n;
        uint8_t *d = read_all(src_path(files[f]), &n);
        size_t step = n < 4000 ? 1 : 7;
        for (size_t len = 0; len < n; len += step) {
            write_all(tmp_path("cut.img"), d, len);
            hp_image img;
            hp_err e;
            if (!hp_image_load(tmp_path("cut.img"), &img, &e)) {
                /* a PNG cut inside IEND, after complete image data, still decodes (as in PIL,
                 * which never reads past the last IDAT); anything earlier must fail */
                if (!(strstr(files[f], ".png") && len >= n - 12))
                    fail_msg("%s cut to %zu of %zu bytes decoded", files[f], len, n);
                hp_image_free(&img);
            } else if (!strstr(e.msg, tmp_path("cut.img"))) {
                fail_msg("message does not name the file: %s", e.msg);
            }
        }
        free(d);
    }
}

/* Random byte flips: decode must succeed or fail with the file named; ASan/valgrind find the
 * rest. */
static void test_random_corruption(void **state) {
    (void)state;
    const char *files[] = {"tiny_20x13.png", "pal4_oob_13x7.png", "rgba16_32x24.png", "chelsea.jpg",
                           "coffee_prog.jpg", "camera_grey.jpg"};
    int ok = 0, failed = 0;
    for (int f = 0; f < 6; f++) {
        size_t n;
        uint8_t *d = read_all(src_path(files[f]), &n);
        uint8_t *m = malloc(n);
        assert_non_null(m);
        for (int t = 0; t < 150; t++) {
            memcpy(m, d, n);
            int flips = 1 + rand() % 4;
            for (int k = 0; k < flips; k++) m[8 + rand() % (n - 8)] ^= (uint8_t)(1 + rand() % 255);
            write_all(tmp_path("flip.img"), m, n);
            hp_image img;
            hp_err e;
            if (hp_image_load(tmp_path("flip.img"), &img, &e)) {
                if (!strstr(e.msg, tmp_path("flip.img"))) fail_msg("message does not name the file: %s", e.msg);
                failed++;
            } else {
                assert_true(img.w > 0 && img.h > 0 && img.rgb);
                hp_image_free(&img);
                ok++;
            }
        }
        free(m);
        free(d);
    }
    printf("random corruption: %d decoded, %d rejected\n", ok, failed);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

/* Headers that claim a size over the limit are refused before any allocation. */
static void test_oversized(void **state) {
    (void)state;
    size_t n;
    uint8_t *png = read_all(src_path("tiny_20x13.png"), &n);
    uint32_t sizes[3][2] = {{20000, 10}, {10, 20000}, {12000, 12000}};
    for (int i = 0; i < 3; i++) {
        put_be32(png + 16, sizes[i][0]);
        put_be32(png + 20, sizes[i][1]);
        put_be32(png + 29, crc32_png(png + 12, 17));
        write_all(tmp_path("huge.png"), png, n);
        expect_fail_msg(tmp_path("huge.png"), "oversized PNG", "over the limit");
    }
    free(png);
    uint8_t *jpg = read_all(src_path("chelsea.jpg"), &n);
    for (size_t i = 0; i + 9 < n; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) { /* SOF0: len(2) precision(1) height(2) width(2) */
            jpg[i + 5] = 0x4E, jpg[i + 6] = 0x20; /* height 20000 */
            break;
        }
    write_all(tmp_path("huge.jpg"), jpg, n);
    expect_fail_msg(tmp_path("huge.jpg"), "oversized JPEG", "over the limit");
    free(jpg);
}

static void test_from_grey(void **state) {
    (void)state;
    uint8_t g[6] = {0, 1, 2, 250, 254, 255};
    hp_image im;
    hp_err e;
    assert_int_equal(hp_image_from_grey(g, 3, 2, &im, &e), 0);
    assert_int_equal(im.w, 3);
    assert_int_equal(im.h, 2);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(im.rgb[3 * i + c], g[i]);
    hp_image_free(&im);
    assert_int_equal(hp_image_from_grey(g, 0, 2, &im, &e), -1);
    assert_null(im.rgb);
}

/* ------------------------------------------------------------------ processor */

static void test_defaults(void **state) {
    (void)state;
    hp_llava_proc_cfg c;
    hp_llava_proc_defaults(&c, 336, 14);
    int pp[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
    assert_int_equal(c.crop, 336);
    assert_int_equal(c.shortest_edge, 336);
    assert_int_equal(c.patch, 14);
    assert_int_equal(c.n_pinpoints, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(c.pinpoints[i][0], pp[i][0]);
        assert_int_equal(c.pinpoints[i][1], pp[i][1]);
    }
    assert_true(c.mean[0] == (float)0.48145466 && c.std[2] == (float)0.27577711);
    /* 576 base + 24 rows x (48 + newline) for a square image */
    assert_int_equal(hp_llava_num_image_tokens(&c, 1000, 1000), 576 + 48 * 49);
    assert_int_equal(hp_llava_num_image_tokens(&c, 0, 10), -1);
    hp_image im = {4, 4, NULL};
    hp_pixels p;
    hp_err e;
    assert_int_equal(hp_llava_preprocess(&im, &c, &p, &e), -1);
    c.shortest_edge = 300;
    uint8_t px[48] = {0};
    im.rgb = px;
    assert_int_equal(hp_llava_preprocess(&im, &c, &p, &e), -1);
    assert_non_null(strstr(e.msg, "shortest_edge"));
}

/* One fixture image through the processor with config `cname`, checked against HF. */
static void check_image_proc(const cJSON *im, const char *cname, const hp_llava_proc_cfg *c, int *exact) {
    const char *file = cJSON_GetObjectItem(im, "file")->valuestring;
    const cJSON *ref = cJSON_GetObjectItem(cJSON_GetObjectItem(im, "proc"), cname);
    hp_image img;
    hp_pixels p;
    hp_err e;
    if (hp_image_load(src_path(file), &img, &e)) fail_msg("%s", e.msg);
    if (hp_llava_preprocess(&img, c, &p, &e)) fail_msg("%s: %s", file, e.msg);
    const cJSON *best = cJSON_GetObjectItem(ref, "best");
    if (p.n_tiles != cJSON_GetObjectItem(ref, "n_tiles")->valueint || p.size != c->crop ||
        p.best_h != cJSON_GetArrayItem(best, 0)->valueint || p.best_w != cJSON_GetArrayItem(best, 1)->valueint ||
        p.orig_h != img.h || p.orig_w != img.w)
        fail_msg("%s [%s]: %d tiles at %dx%d, HF %d at %dx%d", file, cname, p.n_tiles, p.best_h, p.best_w,
                 cJSON_GetObjectItem(ref, "n_tiles")->valueint, cJSON_GetArrayItem(best, 0)->valueint,
                 cJSON_GetArrayItem(best, 1)->valueint);
    assert_int_equal(p.n_tiles, hp_llava_num_tiles(c, img.h, img.w));
    assert_int_equal(hp_llava_num_image_tokens(c, img.h, img.w), cJSON_GetObjectItem(ref, "tokens_processor")->valueint);
    size_t n = (size_t)p.n_tiles * 3 * p.size * p.size;
    uint8_t *bytes = pixels_to_bytes(&p, c);
    int same = mixsum64(bytes, n) == hex64(cJSON_GetObjectItem(ref, "mix")->valuestring);
    *exact += same;
    char what[256];
    snprintf(what, sizeof what, "%s [%s]", file, cname);
    const cJSON *u8 = cJSON_GetObjectItem(ref, "u8");
    if (u8) { /* full reference bytes */
        size_t nr;
        uint8_t *r = read_all(src_path(u8->valuestring), &nr);
        assert_int_equal(nr, n);
        if (compare_levels(what, bytes, r, n) && same) fail_msg("%s: checksum matches but bytes differ", what);
        free(r);
    } else if (!same) {
        g_inexact++;
    }
    const cJSON *f32 = cJSON_GetObjectItem(ref, "f32"), *smp = cJSON_GetObjectItem(ref, "sample");
    if (f32 || smp) { /* HF's floats themselves: all of them, or every sample_stride-th */
        float *r;
        int nd;
        int64_t shape[HP_NPY_MAXDIM];
        if (hp_npy_read_f32(src_path((f32 ? f32 : smp)->valuestring), &r, &nd, shape, &e)) fail_msg("%s", e.msg);
        size_t stride = f32 ? 1 : (size_t)cJSON_GetObjectItem(g_manifest, "sample_stride")->valueint;
        size_t nr = f32 ? n : (n + stride - 1) / stride, ndiff = 0;
        int64_t total = 1;
        for (int k = 0; k < nd; k++) total *= shape[k];
        assert_int_equal(total, (int64_t)nr);
        double maxd = 0;
        float step = 1.0f / 255 / fminf(c->std[0], fminf(c->std[1], c->std[2]));
        for (size_t i = 0; i < nr; i++) {
            double d = fabs((double)p.data[i * stride] - r[i]);
            if (!(d <= TOL_RESAMPLE_LEVELS * step * 1.0001)) fail_msg("%s: element %zu: %.9g vs HF %.9g", what, i * stride, p.data[i * stride], r[i]);
            if (d > 0) ndiff++;
            if (d > maxd) maxd = d;
        }
        if (ndiff > TOL_RESAMPLE_FRACTION * nr + 1) fail_msg("%s: %zu of %zu floats differ", what, ndiff, nr);
        if (ndiff) g_inexact++;
        free(r);
    }
    if (!same && !u8 && !f32 && !smp) fail_msg("%s: checksum differs and there is no reference to compare", what);
    free(bytes);
    hp_pixels_free(&p);
    hp_image_free(&img);
}

static void test_proc_small(void **state) {
    (void)state;
    hp_llava_proc_cfg c;
    load_cfg("small", &c);
    const cJSON *im;
    int n = 0, exact = 0;
    cJSON_ArrayForEach(im, cJSON_GetObjectItem(g_manifest, "images")) {
        check_image_proc(im, "small", &c, &exact);
        n++;
    }
    printf("processor crop %d: %d of %d images bit-exact with HF\n", c.crop, exact, n);
}

static void test_proc_llava336(void **state) {
    (void)state;
    hp_llava_proc_cfg c;
    load_cfg("llava336", &c);
    const cJSON *im;
    int n = 0, exact = 0;
    cJSON_ArrayForEach(im, cJSON_GetObjectItem(g_manifest, "images")) {
        check_image_proc(im, "llava336", &c, &exact);
        n++;
    }
    printf("processor crop %d: %d of %d images bit-exact with HF\n", c.crop, exact, n);
}

/* synth() of make_image_fixtures.py. */
static void synth(hp_image *im, int h, int w, int seed) {
    im->w = w;
    im->h = h;
    im->rgb = malloc((size_t)w * h * 3);
    assert_non_null(im->rgb);
    uint32_t sd = (uint32_t)((uint64_t)seed * 2654435761u);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                uint32_t v = ((uint32_t)x * 73856093u) ^ ((uint32_t)y * 19349663u) ^ ((uint32_t)c * 83492791u) ^ sd;
                v ^= v >> 13;
                v *= 0x5BD1E995u;
                v ^= v >> 15;
                im->rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)v;
            }
}

static void test_proc_synthetic_sizes(void **state) {
    (void)state;
    hp_llava_proc_cfg c;
    load_cfg("small", &c);
    FILE *f = fopen(src_path("synth_small.txt"), "r");
    assert_non_null(f);
    char line[512];
    int rows = 0, quirks = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        int h, w, seed, nt, bh, bw;
        char mix[32], q[128];
        double sum;
        assert_int_equal(sscanf(line, "%d %d %d %d %d %d %31s %lf %127s", &h, &w, &seed, &nt, &bh, &bw, mix, &sum, q), 9);
        hp_image im;
        hp_pixels p;
        hp_err e;
        synth(&im, h, w, seed);
        if (hp_llava_preprocess(&im, &c, &p, &e)) fail_msg("%dx%d: %s", w, h, e.msg);
        if (p.n_tiles != nt || p.best_h != bh || p.best_w != bw)
            fail_msg("%dx%d: %d tiles at %dx%d, HF %d at %dx%d", w, h, p.n_tiles, p.best_h, p.best_w, nt, bh, bw);
        uint8_t *b = pixels_to_bytes(&p, &c);
        size_t n = (size_t)p.n_tiles * 3 * p.size * p.size;
        if (mixsum64(b, n) != hex64(mix)) {
            double s = 0; /* no reference bytes here: the sum bounds how much can differ */
            for (size_t i = 0; i < n; i++) s += p.data[i];
            if (fabs(s - sum) > TOL_RESAMPLE_FRACTION * n * 0.0152)
                fail_msg("h %d w %d: pixel_values differ from HF (sum %.6f vs %.6f)", h, w, s, sum);
            g_inexact++;
        }
        quirks += strcmp(q, "-") != 0;
        free(b);
        hp_pixels_free(&p);
        hp_image_free(&im);
        rows++;
    }
    fclose(f);
    printf("processor on %d synthetic sizes: all match HF (%d needed an HF quirk sidestepped, see synth_small.txt)\n",
           rows, quirks);
    assert_true(rows >= 60);
}

static void check_token_table(const char *cname) {
    hp_llava_proc_cfg c;
    load_cfg(cname, &c);
    char name[64];
    snprintf(name, sizeof name, "tokens_%s.txt", cname);
    FILE *f = fopen(src_path(name), "r");
    assert_non_null(f);
    char line[512];
    int rows = 0, disagree = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        int h, w, bh, bw, gh, gw, uh46, uw46, nt, tok46, tokp, uh, uw, tok;
        assert_int_equal(sscanf(line, "%d %d %d %d %d %d %d %d %d %d %d %d %d %d", &h, &w, &bh, &bw, &gh, &gw, &uh46,
                                &uw46, &nt, &tok46, &tokp, &uh, &uw, &tok), 14);
        int bi = hp_llava_best_resolution(&c, h, w);
        int gh2, gw2, uh2, uw2;
        hp_llava_unpad_shape(&c, h, w, &gh2, &gw2, &uh2, &uw2);
        int tok2 = hp_llava_num_image_tokens(&c, h, w), nt2 = hp_llava_num_tiles(&c, h, w);
        if (c.pinpoints[bi][0] != bh || c.pinpoints[bi][1] != bw || gh2 != gh || gw2 != gw || uh2 != uh ||
            uw2 != uw || tok2 != tok || tok2 != tokp || nt2 != nt)
            fail_msg("[%s] h %d w %d: best %dx%d grid %dx%d unpad %dx%d tiles %d tokens %d; HF %dx%d %dx%d %dx%d %d %d",
                     cname, h, w, c.pinpoints[bi][0], c.pinpoints[bi][1], gh2, gw2, uh2, uw2, nt2, tok2, bh, bw, gh,
                     gw, uh, uw, nt, tok);
        if (tok46 == tokp) { /* wherever transformers 4.46 runs, its model agrees */
            assert_int_equal(tok2, tok46);
            assert_true(uh2 == uh46 && uw2 == uw46);
        } else {
            disagree++;
        }
        rows++;
    }
    fclose(f);
    printf("tokens [%s]: %d sizes equal HF's count (%d where transformers 4.46's model truncates a float and "
           "disagrees with its own processor: we follow the processor and current transformers)\n", cname, rows,
           disagree);
    assert_true(rows >= 300);
}

static void test_tokens_small(void **state) {
    (void)state;
    check_token_table("small");
}

static void test_tokens_llava336(void **state) {
    (void)state;
    check_token_table("llava336");
}

/* The comparisons are not vacuous: one changed input byte changes the checksum of the result. */
static void test_broken_input_detected(void **state) {
    (void)state;
    hp_llava_proc_cfg c;
    load_cfg("small", &c);
    hp_image im;
    hp_pixels p;
    hp_err e;
    if (hp_image_load(src_path("astronaut_120.png"), &im, &e)) fail_msg("%s", e.msg);
    im.rgb[(60 * 120 + 60) * 3 + 1] ^= 0x40;
    assert_int_equal(hp_llava_preprocess(&im, &c, &p, &e), 0);
    uint8_t *b = pixels_to_bytes(&p, &c);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(g_manifest, "images")) {
        if (strcmp(cJSON_GetObjectItem(it, "file")->valuestring, "astronaut_120.png")) continue;
        const cJSON *ref = cJSON_GetObjectItem(cJSON_GetObjectItem(it, "proc"), "small");
        assert_true(mixsum64(b, (size_t)p.n_tiles * 3 * 32 * 32) != hex64(cJSON_GetObjectItem(ref, "mix")->valuestring));
    }
    /* and a buffer with an unwritten (NaN) element is refused by the byte mapping's check */
    norm_lut l;
    make_lut(&c, &l);
    assert_int_equal(to_byte(&l, 0, NAN), -1);
    assert_int_equal(to_byte(&l, 1, l.v[1][77]), 77);
    assert_int_equal(to_byte(&l, 2, nextafterf(l.v[2][200], 10.0f)), -1);
    free(b);
    hp_pixels_free(&p);
    hp_image_free(&im);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_matches_pil),   cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_truncated_every_length), cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_oversized),            cmocka_unit_test(test_from_grey),
        cmocka_unit_test(test_defaults),             cmocka_unit_test(test_proc_small),
        cmocka_unit_test(test_proc_llava336),        cmocka_unit_test(test_proc_synthetic_sizes),
        cmocka_unit_test(test_tokens_small),         cmocka_unit_test(test_tokens_llava336),
        cmocka_unit_test(test_broken_input_detected),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
