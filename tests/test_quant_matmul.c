/* test_quant_matmul.c: products with weights kept in their GGUF block type (kernels/matmul_q.c)
 * against the float32 path (weights dequantised by weights/quant.c, the reference checked against
 * gguf-py), per type on random blocks: the AVX2 kernels against the scalar ones, the 16-bit
 * activation path (small T) within its bound, the dequantising GEMM (large T) equal to float32
 * sgemm; a flipped weight nibble must fail. Then, when models/SmolLM2-135M-Instruct.Q4_1.gguf is
 * present, the real model's logits with kept weights against --weights-f32. HP_SEED fixes the
 * seed; HP_SMOLLM2_GGUF overrides the model path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "ops_cpu.h"
#include "ops_cpu_q.h"
#include "store.h"
#include "tolerances.h"

static unsigned g_seed;

static float urand(void) { return (float)rand() / (float)RAND_MAX; } /* [0, 1] */
static float nrand(void) { /* roughly normal: sum of 4 uniforms, unit variance */
    return (urand() + urand() + urand() + urand() - 2.0f) * 1.7320508f;
}

/* n random blocks of type dt: random quant bytes, scales set to plausible finite values. */
static void random_blocks(hp_dtype dt, uint8_t *b, size_t nblk) {
    size_t bb = hp_dtype_block_bytes(dt);
    for (size_t i = 0; i < nblk * bb; i++) b[i] = (uint8_t)(rand() & 0xFF);
    for (size_t i = 0; i < nblk; i++, b += bb) {
        uint16_t d = hp_f32_to_f16(0.002f + 0.02f * urand()), m = hp_f32_to_f16(-0.05f * urand());
        switch (dt) {
        case HP_Q4_0:
        case HP_Q5_0:
        case HP_Q8_0: memcpy(b, &d, 2); break;
        case HP_Q4_1:
        case HP_Q4_K: memcpy(b, &d, 2), memcpy(b + 2, &m, 2); break; /* d, m / d, dmin */
        case HP_Q6_K: memcpy(b + 208, &d, 2); break;
        default: fail_msg("no random blocks for %s", hp_dtype_name(dt));
        }
    }
}

typedef struct errs {
    double rel, max; /* ‖out − ref‖/‖ref‖, max|out − ref| / max|ref| */
    size_t at;       /* index of the max error */
    int nan;
} errs;

static errs compare(const float *out, const double *ref, size_t n) {
    errs r = {0};
    double num = 0, den = 0, mref = 0, merr = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(out[i]) || isinf(out[i])) r.nan = 1;
        double d = out[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
        if (fabs(ref[i]) > mref) mref = fabs(ref[i]);
        if (fabs(d) > merr) {
            merr = fabs(d);
            r.at = i;
        }
    }
    r.rel = den > 0 ? sqrt(num / den) : sqrt(num);
    r.max = mref > 0 ? merr / mref : merr;
    return r;
}

static int within(errs r, double rel, double max) { return !r.nan && r.rel <= rel && r.max <= max; }

static void expect(errs r, double rel, double max, const char *what, hp_dtype dt) {
    printf("  %-5s %-34s rel %.2e max %.2e (at %zu)\n", hp_dtype_name(dt), what, r.rel, r.max, r.at);
    if (!within(r, rel, max))
        fail_msg("%s %s: rel %.3e (bound %.1e), max %.3e at %zu (bound %.1e)%s (seed %u)",
                 hp_dtype_name(dt), what, r.rel, rel, r.max, r.at, max, r.nan ? ", NaN" : "", g_seed);
}

static void poison(float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = NAN;
}

/* y_ref[t, n] = Σ_k W[n, k] · x[t, k] in double, W dequantised. */
static void ref_product(double *y, const float *x, const float *W, int T, int N, int K) {
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)W[(size_t)n * K + k] * x[(size_t)t * K + k];
            y[(size_t)t * N + n] = s;
        }
}

static const hp_dtype TYPES[] = {HP_Q4_0, HP_Q4_1, HP_Q5_0, HP_Q8_0, HP_Q4_K, HP_Q6_K};

static void check_type(hp_dtype dt) {
    const int N = 67, K = 768, T = 3, TG = HP_Q_GEMM_MIN_T + 4;
    int ok;
    size_t rb = hp_dtype_nbytes(dt, K, &ok), nblk = (size_t)N * K / hp_dtype_block(dt);
    assert_true(ok && hp_cpu_q_supported(dt));
    uint8_t *W = malloc(rb * N);
    float *Wf = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * TG * K);
    float *y = malloc(sizeof(float) * TG * N), *y2 = malloc(sizeof(float) * TG * N);
    double *ref = malloc(sizeof(double) * TG * N), *refq = malloc(sizeof(double) * T * N);
    float *xq = malloc(sizeof(float) * T * K);
    hp_qxblk *qb = malloc(sizeof(hp_qxblk) * T * (K / 32));
    assert_true(W && Wf && x && y && y2 && ref && refq && xq && qb);
    random_blocks(dt, W, nblk);
    hp_dequant_f32(dt, W, Wf, (uint64_t)N * K);
    for (int i = 0; i < TG * K; i++) x[i] = nrand();
    ref_product(ref, x, Wf, TG, N, K);
    /* the quantised activations' own product, exact up to float32 summation */
    for (int t = 0; t < T; t++) {
        hp_cpu_quantize_qx(x + (size_t)t * K, qb + (size_t)t * (K / 32), K);
        for (int k = 0; k < K; k++) xq[t * K + k] = qb[t * (K / 32) + k / 32].d * qb[t * (K / 32) + k / 32].q[k % 32];
    }
    ref_product(refq, xq, Wf, T, N, K);

    /* small T: 16-bit activations; SIMD and scalar kernels against the exact product of the
     * quantised activations, and against the float32 product within the activation bound */
    poison(y, (size_t)T * N);
    assert_int_equal(hp_cpu_matmul_q(y, x, W, dt, T, N, K), 0);
    expect(compare(y, refq, (size_t)T * N), TOL_Q_KERNEL, TOL_Q_KERNEL, hp_cpu_q_isa(), dt);
    hp_cpu_q_force_scalar(1);
    poison(y2, (size_t)T * N);
    assert_int_equal(hp_cpu_matmul_q(y2, x, W, dt, T, N, K), 0);
    hp_cpu_q_force_scalar(0);
    expect(compare(y2, refq, (size_t)T * N), TOL_Q_KERNEL, TOL_Q_KERNEL, "scalar", dt);
    expect(compare(y, ref, (size_t)T * N), TOL_QX_ACT_REL, TOL_QX_ACT_MAX, "16-bit activations vs f32", dt);

    /* large T: dequantised tiles, the float32 values */
    poison(y, (size_t)TG * N);
    assert_int_equal(hp_cpu_matmul_q(y, x, W, dt, TG, N, K), 0);
    expect(compare(y, ref, (size_t)TG * N), TOL_Q_GEMM, TOL_Q_GEMM, "dequantised GEMM vs f32", dt);
    poison(y2, (size_t)TG * N);
    hp_cpu_matmul(y2, x, Wf, TG, N, K, 0.0f);
    expect(compare(y2, ref, (size_t)TG * N), TOL_Q_GEMM, TOL_Q_GEMM, "float32 matmul", dt);

    /* a broken weight must fail: one block's quants all flipped (first row) */
    size_t bb = hp_dtype_block_bytes(dt);
    for (size_t i = bb / 2; i < bb - 4; i++) W[i] ^= 0x55;
    assert_int_equal(hp_cpu_matmul_q(y, x, W, dt, T, N, K), 0);
    errs bad = compare(y, refq, (size_t)T * N);
    printf("  %-5s %-34s rel %.2e max %.2e (must fail)\n", hp_dtype_name(dt), "broken block", bad.rel, bad.max);
    assert_false(within(bad, TOL_Q_KERNEL, TOL_Q_KERNEL));

    /* embedding rows */
    int32_t ids[3] = {0, N - 1, 7};
    float *row = malloc(sizeof(float) * 3 * K);
    assert_non_null(row);
    hp_dequant_f32(dt, W, Wf, (uint64_t)N * K);
    assert_int_equal(hp_cpu_embed_q(row, W, dt, ids, 3, K, N), 0);
    for (int i = 0; i < 3; i++) assert_memory_equal(row + i * K, Wf + (size_t)ids[i] * K, sizeof(float) * K);
    ids[1] = N;
    assert_int_equal(hp_cpu_embed_q(row, W, dt, ids, 3, K, N), -1);
    free(row);
    free(W), free(Wf), free(x), free(y), free(y2), free(ref), free(refq), free(xq), free(qb);
}

static void test_types(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++) check_type(TYPES[i]);
    assert_false(hp_cpu_q_supported(HP_Q5_K)); /* dequantised at load instead */
}

/* The real SmolLM2 Q4_1 (tied Q8_0 embedding): logits with the weights kept against the float32
 * path, for a prefill chunk (dequantising GEMM) and single-token decode steps (16-bit path). */
static void test_smollm2(void **state) {
    (void)state;
    const char *path = getenv("HP_SMOLLM2_GGUF") ? getenv("HP_SMOLLM2_GGUF")
                                                 : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (access(path, R_OK)) {
        printf("skipped: %s absent (scripts/fetch_model.sh)\n", path);
        skip();
    }
    hp_err e = {0};
    hp_backend *bq = hp_backend_cpu_create(0, &e), *bf = hp_backend_cpu_create(0, &e);
    assert_true(bq && bf);
    hp_backend_weights_f32(bf);
    hp_model *mq = hp_model_load(path, bq, &e), *mf = mq ? hp_model_load(path, bf, &e) : NULL;
    if (!mf) fail_msg("%s", e.msg);
    assert_non_null(mq->wdt);
    assert_null(mf->wdt);
    printf("  weights: kept %.1f MiB, float32 %.1f MiB\n", mq->wbytes / 1048576.0, mf->wbytes / 1048576.0);
    assert_true(mq->wbytes * 4 < mf->wbytes);
    const int P = 40, S = 6, V = mq->cfg.V;
    int32_t ids[64], seq[64] = {0}, pos[64], rows[64];
    for (int i = 0; i < P + S; i++) ids[i] = 1 + (int32_t)(rand() % 20000), pos[i] = i, rows[i] = i;
    float *lq = malloc(sizeof(float) * (size_t)P * V), *lf = malloc(sizeof(float) * (size_t)P * V);
    double *ref = malloc(sizeof(double) * (size_t)P * V);
    hp_runtime *rq = hp_runtime_create(mq, 1, 64, 64, 0, &e), *rf = hp_runtime_create(mf, 1, 64, 64, 0, &e);
    assert_true(lq && lf && ref && rq && rf);
    hp_fwd f = {.T = P, .ids = ids, .seq = seq, .pos = pos, .n_logits = P, .logit_rows = rows};
    f.logits_out = lq;
    assert_int_equal(hp_forward(rq, &f, &e), 0);
    f.logits_out = lf;
    assert_int_equal(hp_forward(rf, &f, &e), 0);
    for (size_t i = 0; i < (size_t)P * V; i++) ref[i] = lf[i];
    expect(compare(lq, ref, (size_t)P * V), TOL_Q_MODEL_PREFILL, TOL_Q_MODEL_PREFILL,
           "SmolLM2 prefill logits (40 tokens)", HP_Q4_1);
    for (int s = 0; s < S; s++) {
        int32_t r0 = 0;
        hp_fwd d = {.T = 1, .ids = ids + P + s, .seq = seq, .pos = pos + P + s, .n_logits = 1,
                    .logit_rows = &r0};
        d.logits_out = lq;
        assert_int_equal(hp_forward(rq, &d, &e), 0);
        d.logits_out = lf;
        assert_int_equal(hp_forward(rf, &d, &e), 0);
        for (int i = 0; i < V; i++) ref[i] = lf[i];
        expect(compare(lq, ref, (size_t)V), TOL_Q_MODEL_DECODE_REL, TOL_Q_MODEL_DECODE_MAX,
               "SmolLM2 decode-step logits", HP_Q4_1);
    }
    free(lq), free(lf), free(ref);
    hp_runtime_free(rq), hp_runtime_free(rf);
    hp_model_free(mq), hp_model_free(mf);
    bq->destroy(bq), bf->destroy(bf);
}

int main(void) {
    const char *s = getenv("HP_SEED");
    g_seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    srand(g_seed);
    printf("test_quant_matmul: seed %u (set HP_SEED to repeat), kernels %s\n", g_seed, hp_cpu_q_isa());
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_types), cmocka_unit_test(test_smollm2)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
