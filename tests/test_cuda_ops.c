/* test_cuda_ops.c: every op of the CUDA backend against the CPU backend (the float32 reference
 * of kernels/ *.c), both driven through the hp_backend interface, then the whole decoder on
 * the tiny fixtures on both backends.
 *
 * Inputs are fresh random numbers every run (the seed is printed; HP_SEED=n repeats a run),
 * rounded to bf16 so that both backends see identical values. CUDA outputs are poisoned with
 * NaN before each op and followed by guard elements that must come back unchanged, so an
 * unwritten element or a write past the end fails. Comparison by ‖out − ref‖/‖ref‖ and the
 * max error with its index; NaN never passes; tolerances in tests/tolerances.h. Bad indices
 * (token id, KV slot, capture row) must be reported by sync(). Then LLaVA-NeXT: the vision
 * tower's ops, the tiny-llava fixture end to end and CLIP-L/336 at its real shape.
 *
 * Everywhere, before any GPU check: a self-test of the comparator, and the LLaVA end-to-end
 * checks against a CPU backend that emulates the CUDA backend's bf16 roundings (the basis of
 * the end-to-end tolerances). Exit 0 all passed, 1 a failure, 77 "skipped: ..." (no
 * CUDA in the build, or cudaGetDeviceCount fails or finds none) once the CPU checks passed. */
#include "gpu_test.h"
#include "backend.h"
#include "llava.h"
#include "model.h"
#include "tolerances.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#ifdef HP_HAVE_CUDA
#include "ops_cuda.h"
#include <cuda_runtime_api.h>
#endif

/* ---- random inputs ------------------------------------------------------------------------ */

/* rng, rng_next, rng_uniform, rng_normal: tests/gpu_test.h */

/* ---- comparison ---------------------------------------------------------------------------- */

typedef struct cmp {
    double rel, maxerr, maxref;
    size_t at, bad_at;
    int bad; /* a non-finite value in out or ref */
} cmp;

static cmp measure(const float *out, const float *ref, size_t n) {
    cmp r = {0, 0, 0, 0, 0, 0};
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double o = out[i], f = ref[i];
        if (!isfinite(o) || !isfinite(f)) {
            if (!r.bad) r.bad_at = i;
            r.bad = 1;
            continue;
        }
        double d = fabs(o - f);
        num += d * d;
        den += f * f;
        if (d > r.maxerr) {
            r.maxerr = d;
            r.at = i;
        }
        if (fabs(f) > r.maxref) r.maxref = fabs(f);
    }
    r.rel = den > 0 ? sqrt(num / den) : sqrt(num);
    return r;
}

static int passes(const cmp *r, double tol_rel, double tol_max) {
    double mx = r->maxref > 0 ? r->maxerr / r->maxref : r->maxerr;
    return !r->bad && r->rel <= tol_rel && mx <= tol_max;
}

/* The comparator must reject a corrupted element, a NaN and an unwritten (poisoned) element,
 * and accept an exact copy; otherwise every other result here means nothing. */
static int comparator_selftest(void) {
    enum { N = 1000 };
    float ref[N], out[N];
    for (int i = 0; i < N; i++) ref[i] = out[i] = rng_normal();
    cmp r = measure(out, ref, N);
    int ok = passes(&r, 0, 0);
    out[17] += 0.05f * (float)r.maxref;
    r = measure(out, ref, N);
    ok &= !passes(&r, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX) && r.at == 17;
    out[17] = ref[17];
    out[500] = NAN;
    r = measure(out, ref, N);
    ok &= !passes(&r, 1e30, 1e30) && r.bad_at == 500;
    if (!ok) printf("FAIL comparator self-test: a broken output was not rejected\n");
    return ok;
}

static int n_checks, n_fail;

/* HP_GPU_TEST_ONLY=group,group: only these groups of GPU checks (tests/test_cuda_mutations.sh
 * runs the ones a planted bug lies in): an op's name (embed, rmsnorm, attention, ...), one
 * attention variant (attn_prefill_tiled, attn_decode_split) or decoder (the model checks).
 * HP_GPU_TEST_REDUCED=1: what the CPU emulation of the GPU
 * (tests/cuda_emu) runs in CI: without the CPU-only emulation checks (the normal build runs
 * them), the CLIP-L/336 tower at its real shape and SmolLM2, far too slow there. */
#ifdef HP_HAVE_CUDA /* the GPU checks alone use it */
static int selected(const char *group) {
    const char *only = getenv("HP_GPU_TEST_ONLY");
    size_t n = strlen(group);
    if (!only || !*only) return 1;
    for (const char *p = only; (p = strstr(p, group)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}
#endif
/* HP_GPU_TEST_FAIL_FAST=1: stop at the first failed check (the mutation tests need only one). */
static void fail_fast(void) {
    if (n_fail && getenv("HP_GPU_TEST_FAIL_FAST") && *getenv("HP_GPU_TEST_FAIL_FAST") == '1') {
        printf("stopped at the first failure (HP_GPU_TEST_FAIL_FAST=1)\n");
        exit(1);
    }
}
static int reduced(void) { return getenv("HP_GPU_TEST_REDUCED") && *getenv("HP_GPU_TEST_REDUCED") == '1'; }

static inline int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }
static inline float bf16r(float x) { return hp_bf16_to_f32(hp_f32_to_bf16(x)); }

/* n normal numbers times scale, plus offset, rounded to bf16. */
static inline float *rand_bf16(size_t n, float scale, float offset) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = bf16r(offset + scale * rng_normal());
    return x;
}

static int check(const char *what, const float *out, const float *ref, size_t n, double tol_rel,
                 double tol_max) {
    cmp r = measure(out, ref, n);
    int ok = passes(&r, tol_rel, tol_max);
    n_checks++;
    n_fail += !ok;
    if (r.bad)
        printf("FAIL %-52s non-finite at [%zu]: out=%g ref=%g\n", what, r.bad_at,
               (double)out[r.bad_at], (double)ref[r.bad_at]);
    else
        printf("%s %-52s rel %.2e (tol %.0e) max %.2e at [%zu] out=%.6g ref=%.6g (tol %.0e of %.3g)\n",
               ok ? "ok  " : "FAIL", what, r.rel, tol_rel, r.maxerr, r.at, (double)out[r.at],
               (double)ref[r.at], tol_max, r.maxref);
    fail_fast();
    return ok;
}

static void expect(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect(int cond, const char *fmt, ...) {
    va_list ap;
    n_checks++;
    if (!cond) n_fail++;
    printf("%s ", cond ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fail_fast();
}

static hp_backend *cpu;

static void die(const char *what, const hp_err *e) {
    printf("FAIL %s: %s\n", what, e->msg);
    exit(1);
}

/* ---- the CUDA backend's bf16 roundings, emulated on the CPU ------------------------------- */

/* emu: the CPU backend with every WEIGHT / ACT value rounded to bf16 where the CUDA backend
 * stores one (uploads, and each op's output), float32 arithmetic in between. Run on a whole
 * model it predicts how far the CUDA backend may lie from the float32 reference, which is what
 * the end-to-end vision tolerances (tests/tolerances.h) are set from; it needs no GPU, so the
 * prediction is re-checked on every machine. Not emulated: the bf16 softmax weights inside
 * attention products and GEMM summation order (both far below the storage roundings). */
static hp_backend *emu;

static void round_bf16(void *p, size_t n) {
    float *x = p;
    for (size_t i = 0; i < n; i++) x[i] = bf16r(x[i]);
}
static int emu_upload(hp_backend *be, void *dst, const void *src, size_t n, hp_mem m, hp_err *e) {
    (void)be;
    int rc = cpu->upload(cpu, dst, src, n, m, e);
    if (!rc && (m == HP_MEM_WEIGHT || m == HP_MEM_ACT)) round_bf16(dst, n);
    return rc;
}
static int emu_matmul(hp_backend *be, void *y, const void *x, const void *W, int T, int N, int K) {
    (void)be;
    int rc = cpu->matmul(cpu, y, x, W, T, N, K);
    round_bf16(y, (size_t)T * N);
    return rc;
}
static int emu_rmsnorm(hp_backend *be, void *out, const void *x, const void *w, int T, int D, float eps) {
    (void)be;
    int rc = cpu->rmsnorm(cpu, out, x, w, T, D, eps);
    round_bf16(out, (size_t)T * D);
    return rc;
}
static int emu_rope(hp_backend *be, void *x, const void *pos, const void *inv_freq, int T, int nh,
                    int Dh) {
    (void)be;
    int rc = cpu->rope(cpu, x, pos, inv_freq, T, nh, Dh);
    round_bf16(x, (size_t)T * nh * Dh);
    return rc;
}
static int emu_attention(hp_backend *be, void *z, const void *q, const void *kc, const void *vc,
                         const void *seq, const void *pos, int T, int H, int KV, int Dh, int Tcap,
                         int window) {
    (void)be;
    int rc = cpu->attention(cpu, z, q, kc, vc, seq, pos, T, H, KV, Dh, Tcap, window);
    round_bf16(z, (size_t)T * H * Dh);
    return rc;
}
static int emu_head_scale(hp_backend *be, void *z, const void *alpha, int T, int H, int Dh) {
    (void)be;
    int rc = cpu->head_scale(cpu, z, alpha, T, H, Dh);
    round_bf16(z, (size_t)T * H * Dh);
    return rc;
}
static int emu_glu(hp_backend *be, void *out, const void *gate, const void *up, size_t n, int act) {
    (void)be;
    int rc = cpu->glu(cpu, out, gate, up, n, act);
    round_bf16(out, n);
    return rc;
}
static int emu_add(hp_backend *be, void *x, const void *y, size_t n) {
    (void)be;
    int rc = cpu->add(cpu, x, y, n);
    round_bf16(x, n);
    return rc;
}
static int emu_layernorm(hp_backend *be, void *out, const void *x, const void *w, const void *b,
                         int T, int D, float eps) {
    (void)be;
    int rc = cpu->layernorm(cpu, out, x, w, b, T, D, eps);
    round_bf16(out, (size_t)T * D);
    return rc;
}
static int emu_gelu(hp_backend *be, void *x, size_t n, int quick) {
    (void)be;
    int rc = cpu->gelu(cpu, x, n, quick);
    round_bf16(x, n);
    return rc;
}
static int emu_add_bias(hp_backend *be, void *x, const void *b, int T, int N) {
    (void)be;
    int rc = cpu->add_bias(cpu, x, b, T, N);
    round_bf16(x, (size_t)T * N);
    return rc;
}
static int emu_attention_full(hp_backend *be, void *z, const void *q, const void *k, const void *v,
                              int B, int N, int H, int Dh) {
    (void)be;
    int rc = cpu->attention_full(cpu, z, q, k, v, B, N, H, Dh);
    round_bf16(z, (size_t)B * N * H * Dh);
    return rc;
}
static int emu_im2col(hp_backend *be, void *cols, const void *img, int n, int C, int S, int p) {
    (void)be;
    int rc = cpu->im2col(cpu, cols, img, n, C, S, p);
    round_bf16(cols, (size_t)n * (S / p) * (S / p) * C * p * p);
    return rc;
}

static hp_backend *emu_create(void) {
    hp_backend *b = xmalloc(sizeof *b);
    *b = *cpu; /* memory, copies and the exact ops (embed, kv_store, gathers, f32 products) */
    b->name = "cpu-bf16";
    snprintf(b->desc, sizeof b->desc, "cpu with the CUDA backend's bf16 roundings emulated");
    b->upload = emu_upload;
    b->matmul = emu_matmul;
    b->rmsnorm = emu_rmsnorm;
    b->rope = emu_rope;
    b->attention = emu_attention;
    b->head_scale = emu_head_scale;
    b->glu = emu_glu;
    b->add = emu_add;
    b->layernorm = emu_layernorm;
    b->gelu = emu_gelu;
    b->add_bias = emu_add_bias;
    b->attention_full = emu_attention_full;
    b->im2col = emu_im2col;
    return b;
}

/* ---- LLaVA-NeXT end to end: another backend against the float32 CPU ----------------------- */

static const char *fixture_root(void) {
    const char *r = getenv("HP_SOURCE_DIR");
    return r ? r : ".";
}

/* One image of the tiny-llava fixture through the llava-v1.6 prompt: the packed image features
 * and the logits of every position. */
static int llava_image_run(hp_llava *lv, const char *png, float **feats, int *nf, float **logits,
                           int *T, hp_err *e) {
    hp_image im;
    hp_pixels px = {0};
    hp_inject inj = {0};
    int32_t *ids = NULL, *seq = NULL, *pos = NULL;
    hp_runtime *rt = NULL;
    int rc = -1;
    *feats = *logits = NULL;
    if (hp_image_load(png, &im, e)) return -1;
    int prc = hp_llava_preprocess(&im, &lv->proc, &px, e);
    hp_image_free(&im);
    if (prc || hp_llava_prompt(lv, "What is in the picture?", &px, &ids, T, &inj, e)) goto out;
    int V = lv->m->cfg.V;
    rt = hp_runtime_create(lv->m, 1, *T, *T, 0, e);
    seq = calloc((size_t)*T, sizeof *seq);
    pos = xmalloc(sizeof *pos * (size_t)*T);
    *logits = xmalloc(sizeof(float) * (size_t)*T * V);
    if (!rt || !seq) goto out;
    for (int t = 0; t < *T; t++) pos[t] = t;
    hp_fwd f = {.T = *T, .ids = ids, .seq = seq, .pos = pos, .n_inject = inj.n, .inject_rows = inj.pos,
                .inject = inj.emb, .n_logits = *T, .logit_rows = pos, .logits_out = *logits};
    if (hp_forward(rt, &f, e)) goto out;
    *nf = inj.n;
    *feats = xmalloc(sizeof(float) * (size_t)inj.n * lv->cfg.Dt);
    memcpy(*feats, inj.emb, sizeof(float) * (size_t)inj.n * lv->cfg.Dt);
    rc = 0;
out:
    if (rc) {
        free(*logits);
        *logits = NULL;
    }
    hp_llava_inject_free(&inj);
    hp_pixels_free(&px);
    hp_runtime_free(rt);
    free(ids);
    free(seq);
    free(pos);
    return rc;
}

/* The tiny-llava fixture (CLIP 3 layers, Mistral 2 layers) on be against the CPU, per image:
 * image-token count equal, features and logits within the tolerances. */
static void llava_fixture_vs_cpu(hp_backend *be, double f_rel, double f_max, double l_rel, double l_max) {
    static const char *const images[] = {"square", "wide", "tall", "small"};
    char dir[512], png[700], name[256];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/tiny-llava", fixture_root());
    hp_err e = {{0}};
    hp_llava *lc = hp_llava_load(dir, cpu, &e), *lb = lc ? hp_llava_load(dir, be, &e) : NULL;
    if (!lc || !lb) {
        expect(0, "tiny-llava loads on cpu and %s (%s)", be->name, e.msg);
        hp_llava_free(lc);
        return;
    }
    for (size_t i = 0; i < sizeof images / sizeof *images; i++) {
        snprintf(png, sizeof png, "%s/ref/%s.png", dir, images[i]);
        float *fc, *fb, *gc, *gb;
        int nc = 0, nb = 0, Tc = 0, Tb = 0;
        int rc = llava_image_run(lc, png, &fc, &nc, &gc, &Tc, &e);
        int rb = rc ? -1 : llava_image_run(lb, png, &fb, &nb, &gb, &Tb, &e);
        expect(!rc && !rb && nc == nb && Tc == Tb, "tiny-llava %s on cpu and %s: %d / %d image tokens (%s)",
               images[i], be->name, nc, nb, rc || rb ? e.msg : "ok");
        if (!rc && !rb && nc == nb && Tc == Tb) {
            snprintf(name, sizeof name, "tiny-llava %s %s features [%d x %d]", images[i], be->name, nc,
                     lc->cfg.Dt);
            check(name, fb, fc, (size_t)nc * lc->cfg.Dt, f_rel, f_max);
            snprintf(name, sizeof name, "tiny-llava %s %s logits [%d x %d]", images[i], be->name, Tc,
                     lc->m->cfg.V);
            check(name, gb, gc, (size_t)Tc * lc->m->cfg.V, l_rel, l_max);
        }
        if (!rc) free(fc), free(gc);
        if (!rc && !rb) free(fb), free(gb);
    }
    hp_llava_free(lc);
    hp_llava_free(lb);
}

/* CLIP ViT-L/14-336 as llava-v1.6 uses it (23 of 24 layers, random weights, a tiny decoder
 * beside it) over n_tiles random tiles on be against the CPU: hidden_states[-2]. */
static void clip_l_vs_cpu(hp_backend *be, int n_tiles, uint64_t seed, double tol_rel, double tol_max) {
    hp_err e = {{0}};
    cJSON *root = cJSON_Parse("{\"text_config\": {}}");
    hp_llava_config vc;
    if (!root || hp_llava_vision_config(root, "CLIP-L/336 defaults", &vc, &e)) die("CLIP-L config", &e);
    cJSON_Delete(root);
    hp_config tc;
    memset(&tc, 0, sizeof tc);
    tc.arch = HP_ARCH_MISTRAL;
    snprintf(tc.arch_name, sizeof tc.arch_name, "MistralForCausalLM");
    tc.D = 64, tc.L = 1, tc.H = 4, tc.KV = 2, tc.Dh = 16, tc.F = 128, tc.V = 300;
    tc.max_pos = 4096, tc.rope_theta = 1e4f, tc.rms_eps = 1e-5f, tc.bos_id = 1, tc.eos_id = 2;
    vc.image_token = tc.V - 1; /* the tiny decoder's vocabulary has no id 32000 */
    hp_llava *lc = hp_llava_random(&vc, &tc, cpu, seed, &e);
    hp_llava *lb = lc ? hp_llava_random(&vc, &tc, be, seed, &e) : NULL;
    if (!lc || !lb) {
        expect(0, "random CLIP-L on cpu and %s (%s)", be->name, e.msg);
        hp_llava_free(lc);
        return;
    }
    const hp_clip_config *v = &vc.vis;
    size_t npix = (size_t)n_tiles * v->C * v->S * v->S, nout = (size_t)n_tiles * lc->cfg.P_sel * v->D;
    float *px = xmalloc(sizeof(float) * npix), *oc = xmalloc(sizeof(float) * nout);
    float *ob = xmalloc(sizeof(float) * nout);
    for (size_t i = 0; i < npix; i++) px[i] = rng_normal();
    int rc = hp_llava_tower(lc, px, n_tiles, oc, &e);
    int rb = rc ? -1 : hp_llava_tower(lb, px, n_tiles, ob, &e);
    char name[200];
    snprintf(name, sizeof name, "CLIP-L/336 %s %d tiles, %d layers: hidden state [%d x %d x %d]",
             be->name, n_tiles, vc.feature_hs, n_tiles, lc->cfg.P_sel, v->D);
    if (rc || rb)
        expect(0, "%s runs (%s)", name, e.msg);
    else
        check(name, ob, oc, nout, tol_rel, tol_max);
    free(px);
    free(oc);
    free(ob);
    hp_llava_free(lc);
    hp_llava_free(lb);
}

/* What the emulated roundings do to whole LLaVA runs: must stay within the tolerances the CUDA
 * backend is held to (else those tolerances cannot be met even by a perfect kernel). */
static void emulation_checks(uint64_t seed) {
    llava_fixture_vs_cpu(emu, TOL_VISION_E2E_REL, TOL_VISION_E2E_MAX, TOL_LLAVA_LOGITS_REL,
                         TOL_LLAVA_LOGITS_MAX);
    clip_l_vs_cpu(emu, 1, seed, TOL_VISION_E2E_REL, TOL_VISION_E2E_MAX);
}

#ifdef HP_HAVE_CUDA

static hp_backend *cu;

/* Guard elements after every CUDA output: a bf16-exact value no op produces by accident. */
#define GUARD 16
#define GUARD_VAL 0x1.8p-100f

/* A device buffer of n elements of class m: a copy of host, or NaN if host is NULL, followed
 * (float classes) by GUARD guard elements. */
static void *dev(const void *host, size_t n, hp_mem m) {
    hp_err e = {{0}};
    int guarded = m != HP_MEM_I32;
    size_t tot = n + (guarded ? GUARD : 0);
    void *p = cu->alloc(cu, tot, m, &e);
    if (!p) die("cuda alloc", &e);
    if (guarded) {
        float *h = xmalloc(tot * sizeof(float));
        for (size_t i = 0; i < n; i++) h[i] = host ? ((const float *)host)[i] : NAN;
        for (size_t i = n; i < tot; i++) h[i] = GUARD_VAL;
        if (cu->upload(cu, p, h, tot, m, &e)) die("cuda upload", &e);
        free(h);
    } else if (cu->upload(cu, p, host, n, m, &e)) {
        die("cuda upload", &e);
    }
    return p;
}

/* Downloads n elements of a dev() buffer into host, checks its guard, frees it. */
static void fetch(void *p, float *host, size_t n, hp_mem m, const char *what) {
    hp_err e = {{0}};
    float *h = xmalloc((n + GUARD) * sizeof(float));
    if (cu->download(cu, h, p, n + GUARD, m, &e)) die("cuda download", &e);
    memcpy(host, h, n * sizeof(float));
    size_t i = n;
    while (i < n + GUARD && h[i] == GUARD_VAL) i++;
    if (i < n + GUARD) {
        n_checks++;
        n_fail++;
        printf("FAIL %s: wrote past its end (element %zu = %g)\n", what, i, (double)h[i]);
        fail_fast();
    }
    free(h);
    cu->free(cu, p);
}

/* An op's return code, then sync: both must be clean. */
static int ran(int rc, const char *what) {
    hp_err e = {{0}};
    int srt = cu->sync(cu, &e);
    if (rc || srt) {
        n_checks++;
        n_fail++;
        printf("FAIL %s: op returned %d, sync: %s\n", what, rc, srt ? e.msg : "ok");
        fail_fast();
        return 0;
    }
    return 1;
}

/* A deliberately bad index must make sync() fail with a message naming it. */
static void expect_flagged(int rc, const char *what, const char *needle) {
    hp_err e = {{0}};
    int srt = cu->sync(cu, &e);
    expect(rc == 0 && srt != 0 && strstr(e.msg, needle) != NULL, "%s is reported (%s)", what,
           srt ? e.msg : "no error");
    expect(cu->sync(cu, &e) == 0, "  ... and the next sync is clean");
}

/* ---- op tests ------------------------------------------------------------------------------ */

static void test_embed(int T, int D, int V) {
    char name[128];
    snprintf(name, sizeof name, "embed T=%d D=%d V=%d", T, D, V);
    float *table = rand_bf16((size_t)V * D, 1, 0), *ref = xmalloc(sizeof(float) * T * D);
    float *out = xmalloc(sizeof(float) * T * D);
    int32_t *ids = xmalloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) ids[t] = rng_int(0, V - 1);
    cpu->embed(cpu, ref, table, ids, T, D, V);
    void *dt = dev(table, (size_t)V * D, HP_MEM_WEIGHT), *di = dev(ids, T, HP_MEM_I32);
    void *dx = dev(NULL, (size_t)T * D, HP_MEM_ACT);
    if (ran(cu->embed(cu, dx, dt, di, T, D, V), name)) {
        fetch(dx, out, (size_t)T * D, HP_MEM_ACT, name);
        check(name, out, ref, (size_t)T * D, TOL_COPY_REL, TOL_COPY_MAX);
    } else {
        cu->free(cu, dx);
    }
    ids[T / 2] = V; /* out of range */
    void *dbad = dev(ids, T, HP_MEM_I32), *dx2 = dev(NULL, (size_t)T * D, HP_MEM_ACT);
    expect_flagged(cu->embed(cu, dx2, dt, dbad, T, D, V), "embed: token id == V", "token id");
    cu->free(cu, dbad);
    cu->free(cu, dx2);
    cu->free(cu, dt);
    cu->free(cu, di);
    free(table);
    free(ref);
    free(out);
    free(ids);
}

/* copy: device to device, any class, into a poisoned buffer; must be exact. */
static void test_copy(size_t n, hp_mem m) {
    char name[128];
    snprintf(name, sizeof name, "copy n=%zu %s", n, m == HP_MEM_F32 ? "f32" : "bf16");
    float *x = rand_bf16(n, 1, 0), *out = xmalloc(sizeof(float) * n);
    if (m == HP_MEM_F32)
        for (size_t i = 0; i < n; i++) x[i] += 1e-4f * rng_normal(); /* not bf16-exact */
    void *dx = dev(x, n, m), *dy = dev(NULL, n, m);
    hp_err e = {{0}};
    if (ran(cu->copy(cu, dy, dx, n, m, &e), name)) {
        fetch(dy, out, n, m, name);
        check(name, out, x, n, TOL_COPY_REL, TOL_COPY_MAX);
    }
    cu->free(cu, dx);
    free(x);
    free(out);
}

static void test_gather(int T, int n, int D) {
    char name[128];
    snprintf(name, sizeof name, "gather_rows_f32 T=%d n=%d D=%d", T, n, D);
    float *x = rand_bf16((size_t)T * D, 2, 0), *ref = xmalloc(sizeof(float) * n * D);
    float *out = xmalloc(sizeof(float) * n * D);
    int32_t *rows = xmalloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) rows[i] = rng_int(0, T - 1);
    cpu->gather_rows_f32(cpu, ref, x, rows, n, D);
    void *dx = dev(x, (size_t)T * D, HP_MEM_ACT), *dr = dev(rows, n, HP_MEM_I32);
    void *dout = dev(NULL, (size_t)n * D, HP_MEM_F32);
    if (ran(cu->gather_rows_f32(cu, dout, dx, dr, n, D), name)) {
        fetch(dout, out, (size_t)n * D, HP_MEM_F32, name);
        check(name, out, ref, (size_t)n * D, TOL_COPY_REL, TOL_COPY_MAX);
    }
    cu->free(cu, dx);
    cu->free(cu, dr);
    free(x);
    free(ref);
    free(out);
    free(rows);
}

static void test_rmsnorm(int T, int D, int inplace) {
    char name[128];
    snprintf(name, sizeof name, "rmsnorm T=%d D=%d%s", T, D, inplace ? " in place" : "");
    size_t n = (size_t)T * D;
    float *x = rand_bf16(n, 3, 0.5f), *w = rand_bf16(D, 0.1f, 1), *ref = xmalloc(sizeof(float) * n);
    float *out = xmalloc(sizeof(float) * n);
    cpu->rmsnorm(cpu, ref, x, w, T, D, 1e-5f);
    void *dx = dev(x, n, HP_MEM_ACT), *dw = dev(w, D, HP_MEM_WEIGHT);
    void *dy = inplace ? dx : dev(NULL, n, HP_MEM_ACT);
    if (ran(cu->rmsnorm(cu, dy, dx, dw, T, D, 1e-5f), name)) {
        fetch(dy, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    if (!inplace) cu->free(cu, dx);
    cu->free(cu, dw);
    free(x);
    free(w);
    free(ref);
    free(out);
}

/* scaling: 0 default, 1 linear x4, 2 Llama 3.1's llama3 (factor 8, 1 / 4, 8192). */
static void test_rope(int T, int nh, int Dh, float theta, int maxpos, int scaling) {
    char name[128];
    snprintf(name, sizeof name, "rope T=%d nh=%d Dh=%d theta=%g pos<%d scaling %s", T, nh, Dh, theta,
             maxpos, scaling == 2 ? "llama3" : scaling ? "linear" : "none");
    size_t n = (size_t)T * nh * Dh;
    float *x = rand_bf16(n, 1, 0), *ref = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    float *inv = xmalloc(sizeof(float) * (size_t)(Dh / 2));
    hp_config rc;
    memset(&rc, 0, sizeof rc);
    rc.Dh = Dh, rc.rope_theta = theta, rc.rope_factor = scaling == 2 ? 8 : 4;
    rc.rope_type = scaling == 2 ? HP_ROPE_LLAMA3 : scaling ? HP_ROPE_LINEAR : HP_ROPE_DEFAULT;
    rc.rope_low_freq = 1, rc.rope_high_freq = 4, rc.rope_orig_max_pos = 8192;
    hp_err e = {{0}};
    if (hp_rope_inv_freq(&rc, NULL, inv, &e)) die("rope frequencies", &e);
    int32_t *pos = xmalloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) pos[t] = rng_int(0, maxpos - 1);
    memcpy(ref, x, sizeof(float) * n);
    cpu->rope(cpu, ref, pos, inv, T, nh, Dh);
    void *dx = dev(x, n, HP_MEM_ACT), *dp = dev(pos, T, HP_MEM_I32), *di = dev(inv, Dh / 2, HP_MEM_F32);
    if (ran(cu->rope(cu, dx, dp, di, T, nh, Dh), name)) {
        fetch(dx, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    cu->free(cu, dp);
    cu->free(cu, di);
    free(inv);
    free(x);
    free(ref);
    free(out);
    free(pos);
}

static void test_glu_add(size_t n) {
    static const char *const act_names[] = {"silu", "gelu", "gelu_tanh", "relu"};
    char name[128];
    float *g = rand_bf16(n, 3, 0), *u = rand_bf16(n, 1, 0), *ref = xmalloc(sizeof(float) * n);
    float *out = xmalloc(sizeof(float) * n);
    for (int k = 0; k < 8; k++) {
        int act = k / 2, inplace = k % 2;
        snprintf(name, sizeof name, "glu %s n=%zu%s", act_names[act], n, inplace ? " (out = gate)" : "");
        cpu->glu(cpu, ref, g, u, n, act);
        void *dg = dev(g, n, HP_MEM_ACT), *du = dev(u, n, HP_MEM_ACT);
        void *dout = inplace ? dg : dev(NULL, n, HP_MEM_ACT);
        if (ran(cu->glu(cu, dout, dg, du, n, act), name)) {
            fetch(dout, out, n, HP_MEM_ACT, name);
            check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
        }
        if (!inplace) cu->free(cu, dg);
        cu->free(cu, du);
    }
    snprintf(name, sizeof name, "add n=%zu", n);
    memcpy(ref, g, sizeof(float) * n);
    cpu->add(cpu, ref, u, n);
    void *dx = dev(g, n, HP_MEM_ACT), *dy = dev(u, n, HP_MEM_ACT);
    if (ran(cu->add(cu, dx, dy, n), name)) {
        fetch(dx, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    cu->free(cu, dy);
    free(g);
    free(u);
    free(ref);
    free(out);
}

static void test_matmul(int T, int N, int K) {
    char name[128];
    snprintf(name, sizeof name, "matmul T=%d N=%d K=%d", T, N, K);
    float *x = rand_bf16((size_t)T * K, 1, 0), *W = rand_bf16((size_t)N * K, 1 / sqrtf((float)K), 0);
    float *ref = xmalloc(sizeof(float) * T * N), *out = xmalloc(sizeof(float) * T * N);
    cpu->matmul(cpu, ref, x, W, T, N, K);
    void *dx = dev(x, (size_t)T * K, HP_MEM_ACT), *dW = dev(W, (size_t)N * K, HP_MEM_WEIGHT);
    void *dy = dev(NULL, (size_t)T * N, HP_MEM_ACT);
    if (ran(cu->matmul(cu, dy, dx, dW, T, N, K), name)) {
        fetch(dy, out, (size_t)T * N, HP_MEM_ACT, name);
        check(name, out, ref, (size_t)T * N, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    cu->free(cu, dx);
    cu->free(cu, dW);
    free(x);
    free(W);
    free(ref);
    free(out);
}

/* x is genuinely float32 here (not bf16-rounded): the point of the hi/lo split. */
static void test_matmul_f32(int n, int N, int K) {
    char name[128];
    snprintf(name, sizeof name, "matmul_f32 n=%d N=%d K=%d", n, N, K);
    float *x = xmalloc(sizeof(float) * n * K), *W = rand_bf16((size_t)N * K, 1 / sqrtf((float)K), 0);
    for (size_t i = 0; i < (size_t)n * K; i++) x[i] = rng_normal();
    float *ref = xmalloc(sizeof(float) * n * N), *out = xmalloc(sizeof(float) * n * N);
    cpu->matmul_f32(cpu, ref, x, W, n, N, K);
    void *dx = dev(x, (size_t)n * K, HP_MEM_F32), *dW = dev(W, (size_t)N * K, HP_MEM_WEIGHT);
    void *dy = dev(NULL, (size_t)n * N, HP_MEM_F32);
    if (ran(cu->matmul_f32(cu, dy, dx, dW, n, N, K), name)) {
        fetch(dy, out, (size_t)n * N, HP_MEM_F32, name);
        check(name, out, ref, (size_t)n * N, TOL_F32_SPLIT_REL, TOL_F32_SPLIT_MAX);
    }
    cu->free(cu, dx);
    cu->free(cu, dW);
    free(x);
    free(W);
    free(ref);
    free(out);
}

static void test_head_scale(int T, int H, int Dh) {
    char name[128];
    snprintf(name, sizeof name, "head_scale T=%d H=%d Dh=%d", T, H, Dh);
    static const float choices[] = {1.0f, 0.0f, -1.0f, 5.0f, 0.37f, 2.5f};
    size_t n = (size_t)T * H * Dh;
    float *z = rand_bf16(n, 1, 0), *alpha = xmalloc(sizeof(float) * H);
    float *ref = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    for (int h = 0; h < H; h++) alpha[h] = choices[h % 6];
    memcpy(ref, z, sizeof(float) * n);
    cpu->head_scale(cpu, ref, alpha, T, H, Dh);
    void *dz = dev(z, n, HP_MEM_ACT), *da = dev(alpha, H, HP_MEM_F32);
    if (ran(cu->head_scale(cu, dz, da, T, H, Dh), name)) {
        fetch(dz, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    cu->free(cu, da);
    free(z);
    free(alpha);
    free(ref);
    free(out);
}

/* Tokens of B sequences in random order (runs of random length), some weights 0 with NaN in
 * z (the CPU skips such rows, so must the GPU), out pre-filled (the op accumulates). */
static void test_head_readout(int T, int B, int H, int Dh, int D) {
    char name[128];
    snprintf(name, sizeof name, "head_readout T=%d B=%d H=%d Dh=%d D=%d", T, B, H, Dh, D);
    int HD = H * Dh;
    size_t nout = (size_t)B * H * D;
    float *z = rand_bf16((size_t)T * HD, 1, 0), *Wo = rand_bf16((size_t)D * HD, 0.2f, 0);
    float *w = xmalloc(sizeof(float) * T), *ref = xmalloc(sizeof(float) * nout);
    float *out = xmalloc(sizeof(float) * nout), *init = xmalloc(sizeof(float) * nout);
    int32_t *seq = xmalloc(sizeof(int32_t) * T);
    for (int t = 0, b = 0; t < T; t++) {
        if (t == 0 || rng_uniform() < 0.2) b = rng_int(0, B - 1);
        seq[t] = b;
        w[t] = rng_uniform() < 0.15 ? 0.0f : (float)rng_uniform();
        if (w[t] == 0.0f)
            for (int i = 0; i < HD; i++) z[(size_t)t * HD + i] = NAN;
    }
    for (size_t i = 0; i < nout; i++) init[i] = ref[i] = rng_normal();
    if (cpu->head_readout(cpu, ref, z, w, seq, Wo, T, B, H, Dh, D)) {
        expect(0, "cpu head_readout ran (out of memory)");
        goto out;
    }
    void *dz = dev(z, (size_t)T * HD, HP_MEM_ACT), *dw = dev(w, T, HP_MEM_F32);
    void *ds = dev(seq, T, HP_MEM_I32), *dWo = dev(Wo, (size_t)D * HD, HP_MEM_WEIGHT);
    void *dout = dev(init, nout, HP_MEM_F32);
    if (ran(cu->head_readout(cu, dout, dz, dw, ds, dWo, T, B, H, Dh, D), name)) {
        fetch(dout, out, nout, HP_MEM_F32, name);
        check(name, out, ref, nout, TOL_F32_SPLIT_REL, TOL_F32_SPLIT_MAX);
    } else {
        cu->free(cu, dout);
    }
    seq[T - 1] = B; /* capture row out of range */
    for (int i = 0; i < HD; i++) z[(size_t)(T - 1) * HD + i] = 1.0f;
    w[T - 1] = 1.0f;
    void *dbad = dev(seq, T, HP_MEM_I32), *dz2 = dev(z, (size_t)T * HD, HP_MEM_ACT);
    void *dw2 = dev(w, T, HP_MEM_F32), *dout2 = dev(init, nout, HP_MEM_F32);
    expect_flagged(cu->head_readout(cu, dout2, dz2, dw2, dbad, dWo, T, B, H, Dh, D),
                   "head_readout: capture row == B", "capture row");
    cu->free(cu, dbad);
    cu->free(cu, dz2);
    cu->free(cu, dw2);
    cu->free(cu, dout2);
    cu->free(cu, dz);
    cu->free(cu, dw);
    cu->free(cu, ds);
    cu->free(cu, dWo);
out:
    free(z);
    free(Wo);
    free(w);
    free(ref);
    free(out);
    free(init);
    free(seq);
}

/* Unique (slot, position) pairs so that the write order cannot matter; untouched cache rows
 * must keep their contents. */
static void test_kv_store(int T, int S, int Tcap, int KVD) {
    char name[128];
    snprintf(name, sizeof name, "kv_store T=%d S=%d Tcap=%d KVD=%d", T, S, Tcap, KVD);
    size_t nc = (size_t)S * Tcap * KVD, nkv = (size_t)T * KVD;
    float *kc = rand_bf16(nc, 1, 0), *vc = rand_bf16(nc, 1, 0), *k = rand_bf16(nkv, 1, 0);
    float *v = rand_bf16(nkv, 1, 0), *out = xmalloc(sizeof(float) * nc);
    int32_t *seq = xmalloc(sizeof(int32_t) * T), *pos = xmalloc(sizeof(int32_t) * T);
    int32_t *perm = xmalloc(sizeof(int32_t) * S * Tcap); /* T distinct slots of a shuffle */
    for (int i = 0; i < S * Tcap; i++) perm[i] = i;
    for (int i = 0; i < T; i++) {
        int j = rng_int(i, S * Tcap - 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
        seq[i] = perm[i] / Tcap;
        pos[i] = perm[i] % Tcap;
    }
    free(perm);
    void *dkc = dev(kc, nc, HP_MEM_ACT), *dvc = dev(vc, nc, HP_MEM_ACT), *dk = dev(k, nkv, HP_MEM_ACT);
    void *dv = dev(v, nkv, HP_MEM_ACT), *dseq = dev(seq, T, HP_MEM_I32), *dpos = dev(pos, T, HP_MEM_I32);
    cpu->kv_store(cpu, kc, vc, k, v, seq, pos, T, KVD, Tcap);
    if (ran(cu->kv_store(cu, dkc, dvc, dk, dv, dseq, dpos, T, KVD, Tcap), name)) {
        char n2[160];
        fetch(dkc, out, nc, HP_MEM_ACT, name);
        snprintf(n2, sizeof n2, "%s K", name);
        check(n2, out, kc, nc, TOL_COPY_REL, TOL_COPY_MAX);
        fetch(dvc, out, nc, HP_MEM_ACT, name);
        snprintf(n2, sizeof n2, "%s V", name);
        check(n2, out, vc, nc, TOL_COPY_REL, TOL_COPY_MAX);
    }
    pos[0] = Tcap; /* outside the cache */
    void *dbad = dev(pos, T, HP_MEM_I32), *dkc2 = dev(kc, nc, HP_MEM_ACT), *dvc2 = dev(vc, nc, HP_MEM_ACT);
    expect_flagged(cu->kv_store(cu, dkc2, dvc2, dk, dv, dseq, dbad, T, KVD, Tcap),
                   "kv_store: pos == Tcap", "KV cache");
    cu->free(cu, dbad);
    cu->free(cu, dkc2);
    cu->free(cu, dvc2);
    cu->free(cu, dk);
    cu->free(cu, dv);
    cu->free(cu, dseq);
    cu->free(cu, dpos);
    free(kc);
    free(vc);
    free(k);
    free(v);
    free(out);
    free(seq);
    free(pos);
}

/* How the tokens of an attention test are laid out. */
typedef enum layout {
    LAY_PREFILL,     /* each slot: nseq tokens at positions start..start+len-1, slots in order */
    LAY_DECODE,      /* one token per slot at a random position (a batched decode step) */
    LAY_INTERLEAVED, /* two slots' prefill tokens alternating (runs of length 1 everywhere) */
} layout;

typedef struct attn_case {
    const char *what;
    layout lay;
    int S, H, KV, Dh, Tcap, window;
    int len[8], start[8]; /* LAY_PREFILL / LAY_INTERLEAVED: per slot */
} attn_case;

static void test_attention(const attn_case *c) {
    int S = c->S, KVD = c->KV * c->Dh, T = 0;
    int32_t *seq = xmalloc(sizeof(int32_t) * ((size_t)S * c->Tcap + 1));
    int32_t *pos = xmalloc(sizeof(int32_t) * ((size_t)S * c->Tcap + 1));
    if (c->lay == LAY_DECODE) {
        for (int s = 0; s < S; s++, T++) {
            seq[T] = s;
            pos[T] = rng_int(0, c->Tcap - 1);
        }
        pos[0] = c->Tcap - 1; /* the longest possible range */
    } else if (c->lay == LAY_PREFILL) {
        for (int s = 0; s < S; s++)
            for (int i = 0; i < c->len[s]; i++, T++) {
                seq[T] = s;
                pos[T] = c->start[s] + i;
            }
    } else {
        for (int i = 0; i < c->len[0] || i < c->len[1]; i++)
            for (int s = 0; s < 2; s++)
                if (i < c->len[s]) {
                    seq[T] = s;
                    pos[T] = c->start[s] + i;
                    T++;
                }
    }
    /* The cache holds random values over the union of the tokens' key ranges in each slot and
     * NaN elsewhere: a kernel that reads outside the allowed ranges produces NaN and fails. */
    size_t nc = (size_t)S * c->Tcap * KVD, nq = (size_t)T * c->H * c->Dh;
    float *kc = xmalloc(sizeof(float) * nc), *vc = xmalloc(sizeof(float) * nc);
    float *q = rand_bf16(nq, 2, 0), *ref = xmalloc(sizeof(float) * nq), *out = xmalloc(sizeof(float) * nq);
    for (size_t i = 0; i < nc; i++) kc[i] = vc[i] = NAN;
    for (int s = 0; s < S; s++) {
        int lo = c->Tcap, hi = -1;
        for (int t = 0; t < T; t++)
            if (seq[t] == s) {
                int l = c->window > 0 && pos[t] - c->window + 1 > 0 ? pos[t] - c->window + 1 : 0;
                lo = l < lo ? l : lo;
                hi = pos[t] > hi ? pos[t] : hi;
            }
        for (int j = lo; j <= hi; j++)
            for (int i = 0; i < KVD; i++) {
                size_t o = ((size_t)s * c->Tcap + j) * KVD + i;
                kc[o] = bf16r(rng_normal());
                vc[o] = bf16r(rng_normal());
            }
    }
    cpu->attention(cpu, ref, q, kc, vc, seq, pos, T, c->H, c->KV, c->Dh, c->Tcap, c->window);
    void *dq = dev(q, nq, HP_MEM_ACT), *dkc = dev(kc, nc, HP_MEM_ACT), *dvc = dev(vc, nc, HP_MEM_ACT);
    void *dseq = dev(seq, T, HP_MEM_I32), *dpos = dev(pos, T, HP_MEM_I32);
    static const hp_attn_variant vars[] = {HP_ATTN_AUTO, HP_ATTN_SPLIT, HP_ATTN_TILED};
    for (size_t vi = 0; vi < sizeof vars / sizeof *vars; vi++) {
        if (!hp_cuda_attention_supported(vars[vi], c->Dh, dkc, dvc) ||
            (!selected("attention") && !selected(hp_cuda_attention_variant_name(vars[vi]))))
            continue;
        char name[200];
        snprintf(name, sizeof name, "attention %-18s %s T=%d H=%d KV=%d Dh=%d win=%d",
                 hp_cuda_attention_variant_name(vars[vi]), c->what, T, c->H, c->KV, c->Dh, c->window);
        hp_backend_cuda_set_attention(cu, vars[vi]);
        void *dz = dev(NULL, nq, HP_MEM_ACT);
        if (ran(cu->attention(cu, dz, dq, dkc, dvc, dseq, dpos, T, c->H, c->KV, c->Dh, c->Tcap,
                              c->window),
                name)) {
            fetch(dz, out, nq, HP_MEM_ACT, name);
            check(name, out, ref, nq, TOL_ATTN_REL, TOL_ATTN_MAX);
        } else {
            cu->free(cu, dz);
        }
    }
    hp_backend_cuda_set_attention(cu, HP_ATTN_AUTO);
    if (c->lay == LAY_DECODE) { /* a slot position outside the cache must be flagged */
        int32_t keep = pos[0];
        pos[0] = c->Tcap;
        void *dbad = dev(pos, T, HP_MEM_I32), *dz = dev(NULL, nq, HP_MEM_ACT);
        expect_flagged(cu->attention(cu, dz, dq, dkc, dvc, dseq, dbad, T, c->H, c->KV, c->Dh,
                                     c->Tcap, c->window),
                       "attention: pos == Tcap", "KV cache");
        pos[0] = keep;
        cu->free(cu, dbad);
        cu->free(cu, dz);
    }
    cu->free(cu, dq);
    cu->free(cu, dkc);
    cu->free(cu, dvc);
    cu->free(cu, dseq);
    cu->free(cu, dpos);
    free(seq);
    free(pos);
    free(kc);
    free(vc);
    free(q);
    free(ref);
    free(out);
}

/* ---- the vision tower's ops ---------------------------------------------------------------- */

/* Rows with a mean far from zero (offset 4, std 3): the case a one-pass variance gets wrong. */
static void test_layernorm(int T, int D, int inplace) {
    char name[128];
    snprintf(name, sizeof name, "layernorm T=%d D=%d%s", T, D, inplace ? " in place" : "");
    size_t n = (size_t)T * D;
    float *x = rand_bf16(n, 3, 4), *w = rand_bf16(D, 0.1f, 1), *b = rand_bf16(D, 0.5f, 0);
    float *ref = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    cpu->layernorm(cpu, ref, x, w, b, T, D, 1e-5f);
    void *dx = dev(x, n, HP_MEM_ACT), *dw = dev(w, D, HP_MEM_WEIGHT), *db = dev(b, D, HP_MEM_WEIGHT);
    void *dy = inplace ? dx : dev(NULL, n, HP_MEM_ACT);
    if (ran(cu->layernorm(cu, dy, dx, dw, db, T, D, 1e-5f), name)) {
        fetch(dy, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    if (!inplace) cu->free(cu, dx);
    cu->free(cu, dw);
    cu->free(cu, db);
    free(x);
    free(w);
    free(b);
    free(ref);
    free(out);
}

static void test_gelu(size_t n, int quick) {
    char name[128];
    snprintf(name, sizeof name, "%s n=%zu", quick ? "quick_gelu" : "gelu", n);
    float *x = rand_bf16(n, 3, 0), *ref = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    memcpy(ref, x, sizeof(float) * n);
    cpu->gelu(cpu, ref, n, quick);
    void *dx = dev(x, n, HP_MEM_ACT);
    if (ran(cu->gelu(cu, dx, n, quick), name)) {
        fetch(dx, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    free(x);
    free(ref);
    free(out);
}

static void test_add_bias(int T, int N) {
    char name[128];
    snprintf(name, sizeof name, "add_bias T=%d N=%d", T, N);
    size_t n = (size_t)T * N;
    float *x = rand_bf16(n, 1, 0), *b = rand_bf16(N, 1, 0);
    float *ref = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    memcpy(ref, x, sizeof(float) * n);
    cpu->add_bias(cpu, ref, b, T, N);
    void *dx = dev(x, n, HP_MEM_ACT), *db = dev(b, N, HP_MEM_WEIGHT);
    if (ran(cu->add_bias(cu, dx, db, T, N), name)) {
        fetch(dx, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_BF16_OUT_REL, TOL_BF16_OUT_MAX);
    }
    cu->free(cu, db);
    free(x);
    free(b);
    free(ref);
    free(out);
}

/* q scaled so that some rows are peaked (scores up to ~±20) and others flat. */
static void test_attention_full(int B, int N, int H, int Dh) {
    char name[128];
    snprintf(name, sizeof name, "attention_full B=%d N=%d H=%d Dh=%d", B, N, H, Dh);
    size_t n = (size_t)B * N * H * Dh;
    float *q = rand_bf16(n, 2, 0), *k = rand_bf16(n, 1, 0), *v = rand_bf16(n, 1, 0.3f);
    float *ref = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    expect(cpu->attention_full(cpu, ref, q, k, v, B, N, H, Dh) == 0, "cpu attention_full %s", name);
    void *dq = dev(q, n, HP_MEM_ACT), *dk = dev(k, n, HP_MEM_ACT), *dv = dev(v, n, HP_MEM_ACT);
    void *dz = dev(NULL, n, HP_MEM_ACT);
    if (ran(cu->attention_full(cu, dz, dq, dk, dv, B, N, H, Dh), name)) {
        fetch(dz, out, n, HP_MEM_ACT, name);
        check(name, out, ref, n, TOL_ATTN_REL, TOL_ATTN_MAX);
    } else {
        cu->free(cu, dz);
    }
    cu->free(cu, dq);
    cu->free(cu, dk);
    cu->free(cu, dv);
    free(q);
    free(k);
    free(v);
    free(ref);
    free(out);
}

/* Pixels already bf16-exact: the rearrangement must then be exact. S % p != 0 drops the
 * remainder as the strided convolution does. */
static void test_im2col(int n, int C, int S, int p) {
    char name[128];
    snprintf(name, sizeof name, "im2col n=%d C=%d S=%d p=%d", n, C, S, p);
    size_t npix = (size_t)n * C * S * S, nout = (size_t)n * (S / p) * (S / p) * C * p * p;
    float *img = rand_bf16(npix, 1, 0), *ref = xmalloc(sizeof(float) * nout);
    float *out = xmalloc(sizeof(float) * nout);
    cpu->im2col(cpu, ref, img, n, C, S, p);
    void *di = dev(img, npix, HP_MEM_F32), *dc = dev(NULL, nout, HP_MEM_ACT);
    if (ran(cu->im2col(cu, dc, di, n, C, S, p), name)) {
        fetch(dc, out, nout, HP_MEM_ACT, name);
        check(name, out, ref, nout, TOL_COPY_REL, TOL_COPY_MAX);
    } else {
        cu->free(cu, dc);
    }
    cu->free(cu, di);
    free(img);
    free(ref);
    free(out);
}

static void vision_op_tests(void) {
    if (selected("layernorm")) {
        test_layernorm(5, 1024, 0);
        test_layernorm(577, 1024, 1);
        test_layernorm(3, 33, 0);
    }
    if (selected("gelu")) {
        test_gelu(1000003, 0);
        test_gelu(4096 * 7, 1);
        test_gelu(5, 1);
    }
    if (selected("add_bias")) {
        test_add_bias(577, 1024);
        test_add_bias(9, 13);
    }
    if (selected("attention_full")) {
        test_attention_full(2, 577, 16, 64); /* CLIP-L/336, two tiles */
        test_attention_full(3, 17, 4, 8);    /* the tiny fixture's shape */
        test_attention_full(1, 50, 3, 80);
    }
    if (selected("im2col")) {
        test_im2col(2, 3, 336, 14);
        test_im2col(3, 3, 32, 8);
        test_im2col(1, 2, 30, 7);
    }
}

static void op_tests(void) {
    if (selected("embed")) {
        test_embed(33, 4096, 1000);
        test_embed(7, 6, 300);
    }
    if (selected("copy")) {
        test_copy(12345, HP_MEM_ACT);
        test_copy(777, HP_MEM_F32);
    }
    if (selected("gather")) {
        test_gather(40, 5, 4096);
        test_gather(9, 4, 45);
    }
    if (selected("rmsnorm")) {
        test_rmsnorm(5, 4096, 0);
        test_rmsnorm(3, 48, 1);
        test_rmsnorm(4, 4097, 0);
    }
    if (selected("rope")) {
        test_rope(10, 32, 128, 10000.0f, 32768, 0);
        test_rope(9, 6, 16, 500000.0f, 64, 0);
        test_rope(3, 5, 6, 10000.0f, 100, 0);
        test_rope(7, 8, 64, 500000.0f, 131072, 2);
        test_rope(5, 4, 32, 10000.0f, 4096, 1);
    }
    if (selected("glu")) {
        test_glu_add(8 * 4096);
        test_glu_add(1000003);
    }
    if (selected("matmul")) {
        test_matmul(1, 512, 4096);
        test_matmul(7, 300, 48);
        test_matmul(64, 1024, 4096);
        test_matmul(257, 513, 129);
        test_matmul_f32(1, 32000, 576);
        test_matmul_f32(100, 257, 129);
        test_matmul_f32(3, 1000, 64);
    }
    if (selected("head_scale")) {
        test_head_scale(17, 6, 16);
        test_head_scale(5, 32, 128);
    }
    if (selected("kv_store")) {
        test_kv_store(20, 3, 64, 1024);
        test_kv_store(7, 2, 16, 6);
    }
    if (selected("head_readout")) {
        test_head_readout(50, 3, 6, 16, 48);
        test_head_readout(300, 5, 32, 128, 4096);
        test_head_readout(1, 1, 9, 64, 576);
    }
    if (!selected("attention") && !selected("attn_prefill_tiled") && !selected("attn_decode_split"))
        return;

    static const attn_case cases[] = {
        {"prefill 1 seq", LAY_PREFILL, 1, 8, 2, 64, 128, 0, {100}, {0}},
        {"prefill 3 seqs", LAY_PREFILL, 3, 4, 4, 128, 80, 0, {37, 64, 70}, {0, 0, 0}},
        {"prefill window", LAY_PREFILL, 2, 6, 2, 64, 200, 17, {150, 33}, {0, 0}},
        {"chunked prefill", LAY_PREFILL, 2, 8, 8, 128, 160, 0, {50, 31}, {50, 0}},
        {"chunk + window", LAY_PREFILL, 2, 8, 2, 128, 400, 100, {130, 9}, {200, 0}},
        {"smollm2-like GQA 9/3", LAY_PREFILL, 2, 9, 3, 64, 96, 0, {70, 20}, {0, 0}},
        {"many short seqs", LAY_PREFILL, 8, 4, 2, 64, 32, 0, {3, 17, 1, 9, 30, 2, 12, 5}, {0, 0, 0, 0, 0, 0, 0, 0}},
        {"interleaved", LAY_INTERLEAVED, 2, 4, 2, 64, 80, 0, {40, 35}, {0, 10}},
        {"decode long cache", LAY_DECODE, 4, 32, 8, 128, 4096, 0, {0}, {0}},
        {"decode window", LAY_DECODE, 3, 32, 8, 128, 3000, 512, {0}, {0}},
        {"batched decode", LAY_DECODE, 70, 8, 2, 64, 300, 0, {0}, {0}},
        {"decode Dh=256", LAY_DECODE, 2, 8, 1, 256, 700, 0, {0}, {0}},
        {"prefill Dh=16 (tiny)", LAY_PREFILL, 2, 6, 2, 16, 40, 5, {12, 30}, {0, 0}},
        {"prefill Dh=80", LAY_PREFILL, 1, 4, 2, 80, 90, 0, {90}, {0}},
        {"prefill Dh=6", LAY_PREFILL, 2, 4, 4, 6, 50, 0, {20, 25}, {0, 5}},
        {"prefill GQA 8/1, T=65", LAY_PREFILL, 1, 8, 1, 128, 70, 0, {65}, {0}},
        {"one token", LAY_DECODE, 1, 8, 1, 64, 200, 0, {0}, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        attn_case c = cases[i];
        /* the emulator walks 4096 keys per token slowly; 1000 keeps split chunks uneven */
        if (reduced() && c.Tcap > 1000) c.Tcap = 1000;
        test_attention(&c);
    }
}

/* ---- whole decoder ------------------------------------------------------------------------ */

/* prompts.json: a list of lists of token ids. */
static int load_prompts(const char *path, int32_t ***ids, int **len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)sz + 1);
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    buf[got] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    int B = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 0;
    if (B <= 0) {
        cJSON_Delete(j);
        return -1;
    }
    *ids = xmalloc(sizeof(int32_t *) * B);
    *len = xmalloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) {
        cJSON *p = cJSON_GetArrayItem(j, b);
        int n = cJSON_GetArraySize(p);
        (*len)[b] = n;
        (*ids)[b] = xmalloc(sizeof(int32_t) * (n ? n : 1));
        for (int i = 0; i < n; i++) (*ids)[b][i] = (int32_t)cJSON_GetArrayItem(p, i)->valueint;
    }
    cJSON_Delete(j);
    return B;
}

/* The fixtures' edit (tests/ref/make_fixtures.py EDIT_HEADS, "inv"): alpha = -1 on (0,1), (1,2). */
static void edit_inv(hp_model *m) {
    hp_err e;
    hp_model_edit(m, 0, 1, -1.0f, &e);
    hp_model_edit(m, 1, 2, -1.0f, &e);
}

/* All prompts packed in one call (chunked by Tmax = 16, so chunks split sequences), logits at
 * every position and the mean per-head capture; returns 0 on success. */
static int run_forward(hp_model *m, int B, int32_t **ids, const int *len, float *logits, float *cap,
                       hp_err *e) {
    int T = 0, maxlen = 0;
    for (int b = 0; b < B; b++) {
        T += len[b];
        maxlen = len[b] > maxlen ? len[b] : maxlen;
    }
    hp_runtime *rt = hp_runtime_create(m, B, maxlen, 16, B, e);
    if (!rt) return -1;
    int32_t *tid = xmalloc(sizeof(int32_t) * T), *tseq = xmalloc(sizeof(int32_t) * T);
    int32_t *tpos = xmalloc(sizeof(int32_t) * T), *rows = xmalloc(sizeof(int32_t) * T);
    float *w = xmalloc(sizeof(float) * T);
    for (int b = 0, t = 0; b < B; b++)
        for (int i = 0; i < len[b]; i++, t++) {
            tid[t] = ids[b][i];
            tseq[t] = b;
            tpos[t] = i;
            rows[t] = t;
            w[t] = 1.0f / len[b];
        }
    const hp_config *c = &m->cfg;
    memset(cap, 0, sizeof(float) * B * c->L * c->H * c->D);
    hp_fwd f = {.T = T, .ids = tid, .seq = tseq, .pos = tpos, .n_logits = T, .logit_rows = rows,
                .logits_out = logits, .cap_w = w, .cap_B = B, .cap_out = cap};
    int rc = hp_forward(rt, &f, e);
    hp_runtime_free(rt);
    free(tid);
    free(tseq);
    free(tpos);
    free(rows);
    free(w);
    return rc;
}

/* Smallest gap between the best and the second-best logit over the rows: how far the argmax
 * is from flipping. */
static float min_margin(const float *logits, int rows, int V) {
    float mm = INFINITY;
    for (int r = 0; r < rows; r++) {
        const float *l = logits + (size_t)r * V;
        float a = -INFINITY, b = -INFINITY;
        for (int i = 0; i < V; i++) {
            if (l[i] > a) {
                b = a;
                a = l[i];
            } else if (l[i] > b) {
                b = l[i];
            }
        }
        mm = a - b < mm ? a - b : mm;
    }
    return mm;
}

/* Logits at the last position of one sequence, by a fresh (teacher-forced) prefill. */
static int last_logits(hp_model *m, const int32_t *ids, int n, float *out, hp_err *e) {
    hp_runtime *rt = hp_runtime_create(m, 1, n, n < 64 ? n : 64, 0, e);
    if (!rt) return -1;
    int32_t *seq = xmalloc(sizeof(int32_t) * n), *pos = xmalloc(sizeof(int32_t) * n), row = n - 1;
    for (int i = 0; i < n; i++) {
        seq[i] = 0;
        pos[i] = i;
    }
    hp_fwd f = {.T = n, .ids = ids, .seq = seq, .pos = pos, .n_logits = 1, .logit_rows = &row,
                .logits_out = out};
    int rc = hp_forward(rt, &f, e);
    hp_runtime_free(rt);
    free(seq);
    free(pos);
    return rc;
}

/* Greedy generation on both backends. Tokens must agree until the first step where they do
 * not; there, the CPU's top-2 margin must be small enough for the measured difference between
 * the backends' logits to explain the flip (tests/tolerances.h TOL_GREEDY_FLIP). A bug in the
 * decode path (KV cache, positions, the split kernel) flips confident steps and fails. */
static void greedy_check(const char *model, const char *tag, hp_model *mc, hp_model *mg, int B,
                         int32_t **ids, const int *len, int nnew) {
    hp_err e = {{0}};
    int V = mc->cfg.V;
    int32_t **oc = xmalloc(sizeof(int32_t *) * B), **og = xmalloc(sizeof(int32_t *) * B);
    int *nc = xmalloc(sizeof(int) * B), *ng = xmalloc(sizeof(int) * B);
    memset(oc, 0, sizeof(int32_t *) * B);
    memset(og, 0, sizeof(int32_t *) * B);
    int rc = hp_generate(mc, B, (const int32_t *const *)ids, len, NULL, nnew, 1, oc, nc, 0, &e);
    if (!rc) rc = hp_generate(mg, B, (const int32_t *const *)ids, len, NULL, nnew, 1, og, ng, 0, &e);
    expect(!rc, "%s %s: greedy generation on both backends (%s)", model, tag, rc ? e.msg : "ok");
    for (int b = 0; !rc && b < B; b++) {
        int k = 0;
        while (k < nc[b] && k < ng[b] && oc[b][k] == og[b][k]) k++;
        if (k == nc[b] && k == ng[b]) {
            expect(1, "%s %s prompt %d: greedy %d tokens identical", model, tag, b, k);
            continue;
        }
        int n = len[b] + k;
        int32_t *path = xmalloc(sizeof(int32_t) * n);
        float *lc = xmalloc(sizeof(float) * V), *lg = xmalloc(sizeof(float) * V);
        memcpy(path, ids[b], sizeof(int32_t) * len[b]);
        memcpy(path + len[b], oc[b], sizeof(int32_t) * k);
        if (last_logits(mc, path, n, lc, &e) || last_logits(mg, path, n, lg, &e)) {
            expect(0, "%s %s prompt %d: teacher-forced logits (%s)", model, tag, b, e.msg);
        } else {
            float top = -INFINITY, second = -INFINITY, d = 0;
            for (int v = 0; v < V; v++) {
                if (lc[v] > top) {
                    second = top;
                    top = lc[v];
                } else if (lc[v] > second) {
                    second = lc[v];
                }
                d = fabsf(lc[v] - lg[v]) > d ? fabsf(lc[v] - lg[v]) : d;
            }
            expect(top - second < TOL_GREEDY_FLIP * d,
                   "%s %s prompt %d: identical for %d tokens, then cpu %d / cuda %d at a close call "
                   "(cpu top-2 margin %.3f, logits differ by up to %.3f; allowed below %.1fx)",
                   model, tag, b, k, k < nc[b] ? oc[b][k] : -1, k < ng[b] ? og[b][k] : -1,
                   (double)(top - second), (double)d, TOL_GREEDY_FLIP);
        }
        free(path);
        free(lc);
        free(lg);
    }
    for (int b = 0; b < B; b++) {
        free(oc[b]);
        free(og[b]);
    }
    free(oc);
    free(og);
    free(nc);
    free(ng);
}

/* SmolLM2-135M (models/, fetched by scripts/fetch_smollm2.sh; skipped when absent): greedy only.
 * Its logits are printed, not checked: with a bf16 residual stream they differ from float32 by
 * ~3e-2 (up to ~1e-1 with the inv edit) in the CPU emulation, see kernels/CUDA_NOTES.md. */
static void test_smollm2(void) {
    char path[512], pp[600];
    snprintf(path, sizeof path, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", fixture_root());
    snprintf(pp, sizeof pp, "%s/tests/fixtures/smollm2-ref/prompts.json", fixture_root());
    int32_t **ids = NULL;
    int *len = NULL;
    int B = access(path, R_OK) == 0 ? load_prompts(pp, &ids, &len) : -1;
    if (B <= 0) {
        printf("skip SmolLM2 greedy: %s or %s missing\n", path, pp);
        return;
    }
    hp_err e = {{0}};
    hp_model *mc = hp_model_load(path, cpu, &e), *mg = mc ? hp_model_load(path, cu, &e) : NULL;
    expect(mc && mg, "SmolLM2 loads on both backends (%s)", mc && mg ? "ok" : e.msg);
    if (mc && mg) {
        int V = mc->cfg.V;
        float *lc = xmalloc(sizeof(float) * V), *lg = xmalloc(sizeof(float) * V);
        for (int b = 0; b < B; b++)
            if (!last_logits(mc, ids[b], len[b], lc, &e) && !last_logits(mg, ids[b], len[b], lg, &e)) {
                cmp r = measure(lg, lc, (size_t)V);
                printf("info SmolLM2 prompt %d last-position logits: rel %.2e, max %.3f at [%zu]\n", b,
                       r.rel, r.maxerr, r.at);
            }
        free(lc);
        free(lg);
        greedy_check("SmolLM2", "unedited", mc, mg, B, ids, len, 16);
        edit_inv(mc);
        edit_inv(mg);
        greedy_check("SmolLM2", "edited inv", mc, mg, B, ids, len, 16);
    }
    hp_model_free(mc);
    hp_model_free(mg);
    for (int b = 0; b < B; b++) free(ids[b]);
    free(ids);
    free(len);
}

static void test_decoder(const char *fixture, int greedy) {
    char dir[512], pp[600], name[256];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/%s", fixture_root(), fixture);
    snprintf(pp, sizeof pp, "%s/ref/prompts.json", dir);
    int32_t **ids = NULL;
    int *len = NULL;
    int B = load_prompts(pp, &ids, &len);
    if (B <= 0) {
        printf("skip decoder %s: %s missing (fixtures not generated)\n", fixture, pp);
        return;
    }
    hp_err e = {{0}};
    hp_model *mc = hp_model_load(dir, cpu, &e), *mg = mc ? hp_model_load(dir, cu, &e) : NULL;
    if (!mc || !mg) {
        expect(0, "decoder %s loads on both backends (%s)", fixture, e.msg);
        hp_model_free(mc);
        goto out;
    }
    const hp_config *c = &mc->cfg;
    int gemma3 = !strcmp(fixture, "tiny-gemma3"), T = 0;
    double tol_rel = gemma3 ? TOL_E2E_GEMMA3_REL : TOL_E2E_REL, tol_max = gemma3 ? TOL_E2E_GEMMA3_MAX : TOL_E2E_MAX;
    for (int b = 0; b < B; b++) T += len[b];
    size_t nl = (size_t)T * c->V, ncap = (size_t)B * c->L * c->H * c->D;
    float *lc = xmalloc(sizeof(float) * nl), *lg = xmalloc(sizeof(float) * nl);
    float *cc = xmalloc(sizeof(float) * ncap), *cg = xmalloc(sizeof(float) * ncap);
    for (int edited = 0; edited < 2; edited++) {
        if (edited) {
            edit_inv(mc);
            edit_inv(mg);
        }
        const char *tag = edited ? " edited inv" : "";
        int rc1 = run_forward(mc, B, ids, len, lc, cc, &e);
        if (rc1) printf("  cpu forward: %s\n", e.msg);
        int rc2 = rc1 ? -1 : run_forward(mg, B, ids, len, lg, cg, &e);
        expect(!rc1 && !rc2, "decoder %s%s forward on both backends (%s)", fixture, tag,
               rc1 || rc2 ? e.msg : "ok");
        if (rc1 || rc2) continue;
        snprintf(name, sizeof name, "decoder %s%s logits [%d x %d]", fixture, tag, T, c->V);
        check(name, lg, lc, nl, tol_rel, tol_max);
        snprintf(name, sizeof name, "decoder %s%s heads_mean [%d,%d,%d,%d]", fixture, tag, B, c->L,
                 c->H, c->D);
        check(name, cg, cc, ncap, tol_rel, tol_max);
        printf("     (min top-2 logit margin: cpu %.3f, cuda %.3f)\n", (double)min_margin(lc, T, c->V),
               (double)min_margin(lg, T, c->V));
    }
    if (greedy) greedy_check(fixture, "edited inv", mc, mg, B, ids, len, 8); /* still edited */
    free(lc);
    free(lg);
    free(cc);
    free(cg);
    hp_model_free(mc);
    hp_model_free(mg);
out:
    for (int b = 0; b < B; b++) free(ids[b]);
    free(ids);
    free(len);
}

#endif /* HP_HAVE_CUDA */

int main(void) {
    uint64_t seed = hp_test_seed();
    rng = seed;
    if (!comparator_selftest()) return 1;
    hp_err e = {{0}};
    cpu = hp_backend_cpu_create(0, &e);
    if (!cpu) die("cpu backend", &e);
    emu = emu_create();
    /* HP_GPU_TEST_OPS_ONLY=1: the op tests only (compute-sanitizer runs, where whole models
     * under instrumentation would take most of a device call). */
    int ops_only = getenv("HP_GPU_TEST_OPS_ONLY") && *getenv("HP_GPU_TEST_OPS_ONLY") == '1';
    if (!ops_only && !reduced()) emulation_checks(seed);
    if (n_fail) {
        printf("%d checks, %d failed (seed %llu): the bf16 emulation already misses the tolerances\n",
               n_checks, n_fail, (unsigned long long)seed);
        return 1;
    }
    if (!hp_test_cuda_device()) { /* the emulation checks passed; the CUDA ones cannot run */
        free(emu);
        cpu->destroy(cpu);
        return 77;
    }
#ifdef HP_HAVE_CUDA
    cu = hp_backend_cuda_create(0, &e);
    if (!cu) die("cuda backend", &e);
    printf("%s\n%s\n", cpu->desc, cu->desc);
    op_tests();
    vision_op_tests();
    if (ops_only || !selected("decoder")) goto done;
    /* tiny-mistral: sliding window 5 shorter than most prompts (decode steps beyond it);
     * tiny-llama: GQA 6/2, tied embeddings; tiny-llama-bf16: weights exact in bf16, so only
     * activation rounding differs. Greedy identity is not robust on the tiny models (top-2
     * margins down to 0.003 against bf16 logit differences ~0.1, see kernels/CUDA_NOTES.md),
     * hence the margin-aware greedy_check; SmolLM2's chat prompts give margins > 1. */
    test_decoder("tiny-mistral", 1);
    test_decoder("tiny-llama", 1);
    test_decoder("tiny-llama-bf16", 0);
    /* gelu MLP; Gemma 3 (q/k norms over T*H rows of Dh, the embedding scale through head_scale,
     * post norms, sliding and global layers, soft-capped logits); gemma3's bf16 tolerance is its
     * own (tests/tolerances.h), measured under tests/cuda_emu. */
    test_decoder("tiny-llama-act-gelu", 1);
    test_decoder("tiny-gemma3", 1);
    if (!reduced()) test_smollm2();
    /* LLaVA-NeXT: the fixture end to end (vision tower, projector, packing, injected decoder)
     * and CLIP-L/336 at its real shape over two tiles. */
    llava_fixture_vs_cpu(cu, TOL_VISION_E2E_REL, TOL_VISION_E2E_MAX, TOL_LLAVA_LOGITS_REL,
                         TOL_LLAVA_LOGITS_MAX);
    if (!reduced()) clip_l_vs_cpu(cu, 2, seed, TOL_VISION_E2E_REL, TOL_VISION_E2E_MAX);
done:
    cu->destroy(cu);
#endif
    free(emu);
    cpu->destroy(cpu);
    printf("%d checks, %d failed (seed %llu)\n", n_checks, n_fail, (unsigned long long)seed);
    return n_fail ? 1 : 0;
}
