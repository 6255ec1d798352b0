/* test_somp_cuda.c: the GPU SOMP (kernels/somp.cu) against the fp64 CPU reference
 * (kernels/somp.c, hp_somp_cpu head by head) on fresh random problems every run (seed printed;
 * HP_SEED=n repeats a run): Gaussian heads with and without centring, N = 1 (plain OMP), odd N,
 * sparse signals, duplicate / scaled / zero atoms, k past the rank of the dictionary, signals
 * exactly in the span of a few atoms, an all-zero head, many heads split into groups, inputs in
 * device memory, and non-finite inputs (must fail with a message).
 *
 * Per head: the supports must be equal step for step; where they first differ, the test
 * recomputes both atoms' selection scores on the common prefix in fp64 and accepts the
 * divergence only as a near-tie (score gap within the fp32 error bound, TOL_SOMP_TIE); later
 * steps of that head are then not comparable and are not compared. EVR within TOL_SOMP_EVR at
 * every comparable step, coefficients by ‖W_gpu − W_cpu‖/‖W_cpu‖ <= TOL_SOMP_COEF where the
 * supports agree in full, NaN never passes. Result structs are poisoned before each call, and
 * the GPU code fills its device outputs with NaN before computing, so an unwritten entry
 * fails. A self-test of the comparator (a shifted EVR, a swapped atom, a NaN coefficient must
 * fail) runs first, everywhere.
 * Exit 0 all passed, 1 a failure, 77 "skipped: ..." (no CUDA in the build, or
 * cudaGetDeviceCount fails or finds none). */
#include "gpu_test.h"
#include "somp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HP_HAVE_CUDA
#include "somp_cuda.h"
#include <cuda_runtime_api.h>
#endif

/* Tolerances (fp64 CPU reference vs fp32 GPU residual/correlations with fp64 QR):
 * EVR: the fp32 residual gives ~1e-7·sqrt(k) (somp.cu header); measured <= 5e-8 with both QR
 * variants under tests/cuda_emu (k <= 60). */
#define TOL_SOMP_EVR 1e-6
/* Coefficients: fp32 residual projections (~1e-7) amplified by cond(D[S]) of these random
 * supports (< 100): 1e-4 leaves 10x headroom over the worst case seen in the analysis. */
#define TOL_SOMP_COEF 1e-4
/* Near-tie: each fp32 correlation carries up to ~sqrt(D)·2^-24 ≈ 1.4e-6 (D <= 512 here) of the
 * scale ‖d_j‖·Σ_i‖h_i‖ from the initial product, and as much again from each of up to k = 40
 * rank-1 updates in the worst case: ~5e-5 per score, two scores: 1e-4. A wrong index or a
 * wrong update gives gaps of 1e-3 and more (the self-test's is ~1e-1). */
#define TOL_SOMP_TIE 1e-4
/* ‖H‖²: fp32 centring and fp64 sums vs fp64 throughout. */
#define TOL_SOMP_HNORM 1e-6
/* A head whose CPU EVR is above 1 − this has a residual that vanished to fp32 rounding: the
 * GPU stops there (somp.cu SOMP_RES_TOL_F32), the CPU may fit rounding noise further. */
#define TOL_SOMP_VANISHED 1e-9

/* ---- random numbers ------------------------------------------------------------------------- */

/* rng, rng_next, rng_uniform, rng_normal: tests/gpu_test.h */

/* ---- comparison ----------------------------------------------------------------------------- */

typedef struct prob {
    const char *name;
    int nh, N, D, V, k, center;
    float *H;    /* [nh][N][D] */
    float *Dict; /* [V][D] */
} prob;

typedef struct cmp_stats {
    int heads, full_match, near_ties, early_vanished;
    double max_evr, max_coef, max_gap;
} cmp_stats;

/* fp64 selection scores of atoms ja and jb for head h after the support prefix S[0..t):
 * the residual of the (centred) signals against span(D[S]) by modified Gram-Schmidt twice,
 * then Σ_i |<d_j, r_i>|; *scale = max over the two atoms of ‖d_j‖·Σ_i ‖h_i‖. */
static void prefix_scores(const prob *p, int h, const int32_t *S, int t, int ja, int jb,
                          double *sa, double *sb, double *scale) {
    int N = p->N, D = p->D;
    double *R = xmalloc(sizeof(double) * N * D), *Q = xmalloc(sizeof(double) * (t ? t : 1) * D);
    const float *Hf = p->H + (size_t)h * N * D;
    for (size_t i = 0; i < (size_t)N * D; i++) R[i] = Hf[i];
    if (p->center)
        for (int d = 0; d < D; d++) {
            double m = 0;
            for (int i = 0; i < N; i++) m += R[(size_t)i * D + d];
            m /= N;
            for (int i = 0; i < N; i++) R[(size_t)i * D + d] -= m;
        }
    double hsum = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += R[(size_t)i * D + d] * R[(size_t)i * D + d];
        hsum += sqrt(s);
    }
    int nq = 0;
    for (int s = 0; s < t; s++) {
        double *q = Q + (size_t)nq * D, nrm = 0;
        for (int d = 0; d < D; d++) q[d] = p->Dict[(size_t)S[s] * D + d];
        for (int pass = 0; pass < 2; pass++)
            for (int u = 0; u < nq; u++) {
                double c = 0;
                for (int d = 0; d < D; d++) c += Q[(size_t)u * D + d] * q[d];
                for (int d = 0; d < D; d++) q[d] -= c * Q[(size_t)u * D + d];
            }
        for (int d = 0; d < D; d++) nrm += q[d] * q[d];
        if (nrm <= 0) continue;
        for (int d = 0; d < D; d++) q[d] /= sqrt(nrm);
        nq++;
    }
    for (int i = 0; i < N; i++)
        for (int u = 0; u < nq; u++) {
            double *r = R + (size_t)i * D, c = 0;
            for (int d = 0; d < D; d++) c += r[d] * Q[(size_t)u * D + d];
            for (int d = 0; d < D; d++) r[d] -= c * Q[(size_t)u * D + d];
        }
    int js[2] = {ja, jb};
    double out[2], sc = 0;
    for (int w = 0; w < 2; w++) {
        const float *a = p->Dict + (size_t)js[w] * D;
        double s = 0, an = 0;
        for (int d = 0; d < D; d++) an += (double)a[d] * a[d];
        for (int i = 0; i < N; i++) {
            double c = 0;
            for (int d = 0; d < D; d++) c += a[d] * R[(size_t)i * D + d];
            s += fabs(c);
        }
        out[w] = s;
        if (sqrt(an) * hsum > sc) sc = sqrt(an) * hsum;
    }
    *sa = out[0];
    *sb = out[1];
    *scale = sc;
    free(R);
    free(Q);
}

static int finite_all(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Compares one head; returns 1 if it passes, printing the reason otherwise. */
static int compare_head(const prob *p, int h, const hp_somp_result *c, const hp_somp_result *g,
                        cmp_stats *st) {
    char tag[96];
    snprintf(tag, sizeof tag, "%s head %d", p->name, h);
    if (g->k < 0 || g->k > p->k || (g->k > 0 && (!g->support || !g->evr || !g->coef))) {
        printf("FAIL %s: GPU result malformed (k = %d)\n", tag, g->k);
        return 0;
    }
    if (!isfinite(g->h_norm2) ||
        fabs(g->h_norm2 - c->h_norm2) > TOL_SOMP_HNORM * (c->h_norm2 > 0 ? c->h_norm2 : 1)) {
        printf("FAIL %s: ‖H‖² %.9g (GPU) vs %.9g (CPU)\n", tag, g->h_norm2, c->h_norm2);
        return 0;
    }
    if (!finite_all(g->evr, (size_t)g->k) || !finite_all(g->coef, (size_t)p->N * g->k)) {
        printf("FAIL %s: non-finite EVR or coefficient in the GPU result (unwritten output?)\n", tag);
        return 0;
    }
    int kmin = c->k < g->k ? c->k : g->k, t = 0;
    while (t < kmin && c->support[t] == g->support[t]) t++;
    int diverged = t < kmin;
    if (diverged) {
        double sc, sg, scale;
        prefix_scores(p, h, c->support, t, c->support[t], g->support[t], &sc, &sg, &scale);
        double gap = fabs(sc - sg) / scale;
        if (gap > st->max_gap) st->max_gap = gap;
        if (gap > TOL_SOMP_TIE) {
            printf("FAIL %s: step %d chose atom %d (GPU) vs %d (CPU); fp64 scores %.12g vs %.12g, "
                   "gap %.2e of the scale > %.0e: not a near-tie\n",
                   tag, t, g->support[t], c->support[t], sg, sc, gap, TOL_SOMP_TIE);
            return 0;
        }
        st->near_ties++;
    } else if (c->k != g->k) {
        /* Same atoms as far as both went: only a vanished residual may end one of them early. */
        const hp_somp_result *shorter = c->k < g->k ? c : g;
        double evr_end = kmin > 0 ? c->evr[kmin - 1] : 0;
        if (shorter != g || evr_end < 1 - TOL_SOMP_VANISHED) {
            printf("FAIL %s: %s stopped after %d atoms, the other after %d (CPU EVR there %.12f)\n",
                   tag, shorter == g ? "GPU" : "CPU", kmin, shorter == g ? c->k : g->k, evr_end);
            return 0;
        }
        st->early_vanished++;
    }
    for (int s = 0; s < t; s++) {
        double d = fabs(g->evr[s] - c->evr[s]);
        if (d > st->max_evr) st->max_evr = d;
        if (!(d <= TOL_SOMP_EVR)) {
            printf("FAIL %s: EVR after step %d: %.9f (GPU) vs %.9f (CPU), |Δ| %.2e > %.0e\n", tag,
                   s + 1, g->evr[s], c->evr[s], d, TOL_SOMP_EVR);
            return 0;
        }
    }
    if (!diverged && c->k == g->k) {
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)p->N * c->k; i++) {
            double d = g->coef[i] - c->coef[i];
            num += d * d;
            den += c->coef[i] * c->coef[i];
        }
        double rel = den > 0 ? sqrt(num / den) : sqrt(num);
        if (rel > st->max_coef) st->max_coef = rel;
        if (!(rel <= TOL_SOMP_COEF)) {
            printf("FAIL %s: coefficients ‖ΔW‖/‖W‖ = %.2e > %.0e (k = %d)\n", tag, rel,
                   TOL_SOMP_COEF, c->k);
            return 0;
        }
        st->full_match++;
    }
    return 1;
}

static int compare_all(const prob *p, const hp_somp_result *c, const hp_somp_result *g,
                       cmp_stats *st) {
    memset(st, 0, sizeof *st);
    int ok = 1;
    for (int h = 0; h < p->nh; h++) {
        st->heads++;
        ok &= compare_head(p, h, &c[h], &g[h], st);
    }
    return ok;
}

static void copy_result(hp_somp_result *dst, const hp_somp_result *src, int N, int kmax) {
    *dst = *src;
    dst->support = xmalloc(sizeof(int32_t) * (kmax ? kmax : 1));
    dst->evr = xmalloc(sizeof(double) * (kmax ? kmax : 1));
    dst->coef = xmalloc(sizeof(double) * (src->k ? (size_t)N * src->k : 1));
    memcpy(dst->support, src->support, sizeof(int32_t) * src->k);
    memcpy(dst->evr, src->evr, sizeof(double) * src->k);
    memcpy(dst->coef, src->coef, sizeof(double) * (size_t)N * src->k);
}

/* The comparator must reject a shifted EVR, an atom swapped for a clearly worse one and a NaN
 * coefficient, and accept an exact copy; otherwise every other result here means nothing. */
static int comparator_selftest(void) {
    prob p = {"selftest", 1, 24, 32, 64, 8, 0, NULL, NULL};
    p.H = xmalloc(sizeof(float) * p.N * p.D);
    p.Dict = xmalloc(sizeof(float) * p.V * p.D);
    for (int i = 0; i < p.N * p.D; i++) p.H[i] = rng_normal();
    for (int i = 0; i < p.V * p.D; i++) p.Dict[i] = rng_normal();
    hp_somp_opts o = {.k = p.k};
    hp_somp_result ref, bad;
    hp_err e = {{0}};
    if (hp_somp_cpu(p.H, p.N, p.D, p.Dict, p.V, &o, &ref, &e)) {
        printf("FAIL comparator self-test: CPU SOMP failed: %s\n", e.msg);
        return 0;
    }
    cmp_stats st;
    int ok = compare_all(&p, &ref, &ref, &st);
    printf("comparator self-test (the next lines must report failures):\n");
    copy_result(&bad, &ref, p.N, p.k);
    bad.evr[2] += 2 * TOL_SOMP_EVR;
    ok &= !compare_all(&p, &ref, &bad, &st);
    hp_somp_result_free(&bad);
    copy_result(&bad, &ref, p.N, p.k);
    /* the atom with the lowest fp64 score at step 0 cannot be a near-tie of the best */
    int worst = -1;
    double ws = 1e300;
    for (int j = 0; j < p.V; j++) {
        double s, s2, scale;
        prefix_scores(&p, 0, ref.support, 0, j, j, &s, &s2, &scale);
        if (s < ws) {
            ws = s;
            worst = j;
        }
    }
    bad.support[0] = worst;
    ok &= !compare_all(&p, &ref, &bad, &st);
    hp_somp_result_free(&bad);
    copy_result(&bad, &ref, p.N, p.k);
    bad.coef[5] = NAN;
    ok &= !compare_all(&p, &ref, &bad, &st);
    hp_somp_result_free(&bad);
    hp_somp_result_free(&ref);
    free(p.H);
    free(p.Dict);
    printf("%s comparator self-test\n", ok ? "ok  " : "FAIL");
    return ok;
}

#ifdef HP_HAVE_CUDA

static int n_checks, n_fail;

static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }

static void expect(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_checks++;
    n_fail += !ok;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void poison(hp_somp_result *r, int n) { memset(r, 0xa5, sizeof *r * (size_t)n); }

static void free_results(hp_somp_result *r, int n) {
    for (int h = 0; h < n; h++) hp_somp_result_free(&r[h]);
    free(r);
}

/* CPU reference, one head at a time. */
static hp_somp_result *run_cpu(const prob *p, double *secs) {
    hp_somp_opts o = {.k = p->k, .center = p->center};
    hp_somp_result *r = xmalloc(sizeof *r * p->nh);
    hp_err e = {{0}};
    double t0 = now_s();
    for (int h = 0; h < p->nh; h++)
        if (hp_somp_cpu(p->H + (size_t)h * p->N * p->D, p->N, p->D, p->Dict, p->V, &o, &r[h], &e)) {
            printf("FAIL %s: CPU reference failed on head %d: %s\n", p->name, h, e.msg);
            exit(1);
        }
    *secs = now_s() - t0;
    return r;
}

/* GPU SOMP on host (or device) inputs with at most max_group heads per group. */
static hp_somp_result *run_gpu(const prob *p, const float *H, const float *Dict, int max_group,
                               hp_somp_qr qr, double *secs) {
    hp_somp_opts o = {.k = p->k, .center = p->center};
    hp_somp_result *r = xmalloc(sizeof *r * p->nh);
    poison(r, p->nh);
    hp_err e = {{0}};
    double t0 = now_s();
    int rc = hp_somp_cuda_batch_qr(H, p->nh, p->N, p->D, Dict, p->V, &o, max_group, qr, r, &e);
    *secs = now_s() - t0;
    if (rc) {
        expect(0, "%s: GPU SOMP failed: %s", p->name, e.msg);
        free(r);
        return NULL;
    }
    return r;
}

/* Both QR variants of the GPU SOMP against the CPU. */
static void check_problem(const prob *p, int max_group) {
    static const hp_somp_qr qrs[] = {HP_SOMP_QR_HOUSEHOLDER, HP_SOMP_QR_CGS2};
    double tc, tg;
    hp_somp_result *c = run_cpu(p, &tc);
    for (size_t v = 0; v < sizeof qrs / sizeof *qrs; v++) {
        hp_somp_result *g = run_gpu(p, p->H, p->Dict, max_group, qrs[v], &tg);
        if (!g) continue;
        cmp_stats st;
        int ok = compare_all(p, c, g, &st);
        expect(ok, "%-22s %-20s %4d heads N=%-4d D=%-4d V=%-5d k=%-3d%s groups<=%-3d: full match "
               "%d, near-ties %d (max gap %.1e), vanished-early %d; max|ΔEVR| %.1e, coef rel %.1e; "
               "cpu %.3fs gpu %.3fs",
               p->name, hp_somp_cuda_qr_name(qrs[v]), p->nh, p->N, p->D, p->V, p->k,
               p->center ? " centred" : "", max_group, st.full_match, st.near_ties, st.max_gap,
               st.early_vanished, st.max_evr, st.max_coef, tc, tg);
        free_results(g, p->nh);
    }
    free_results(c, p->nh);
}

static prob make_gaussian(const char *name, int nh, int N, int D, int V, int k, int center,
                          float offset) {
    prob p = {name, nh, N, D, V, k, center, NULL, NULL};
    p.H = xmalloc(sizeof(float) * (size_t)nh * N * D);
    p.Dict = xmalloc(sizeof(float) * (size_t)V * D);
    float *mu = xmalloc(sizeof(float) * D);
    for (int d = 0; d < D; d++) mu[d] = offset * rng_normal();
    for (size_t i = 0; i < (size_t)nh * N * D; i++) p.H[i] = rng_normal() + mu[i % D];
    for (size_t i = 0; i < (size_t)V * D; i++) p.Dict[i] = rng_normal();
    free(mu);
    return p;
}

/* Signals W·D[S] + noise with a shared random support S of s atoms per head. */
static prob make_sparse(const char *name, int nh, int N, int D, int V, int k, int s, float noise) {
    prob p = make_gaussian(name, nh, N, D, V, k, 0, 0);
    for (int h = 0; h < nh; h++) {
        int *S = xmalloc(sizeof(int) * s);
        for (int u = 0; u < s; u++) S[u] = rng_int(0, V - 1);
        for (int i = 0; i < N; i++) {
            float *x = p.H + ((size_t)h * N + i) * D;
            for (int d = 0; d < D; d++) x[d] = noise * rng_normal();
            for (int u = 0; u < s; u++) {
                float w = rng_normal();
                for (int d = 0; d < D; d++) x[d] += w * p.Dict[(size_t)S[u] * D + d];
            }
        }
        free(S);
    }
    return p;
}

static void free_prob(prob *p) {
    free(p->H);
    free(p->Dict);
}

/* HP_GPU_TEST_REDUCED=1: the shapes the CPU emulation of the GPU (tests/cuda_emu) runs in CI;
 * the largest two problems shrink, every case is kept. */
static int reduced(void) { return getenv("HP_GPU_TEST_REDUCED") && *getenv("HP_GPU_TEST_REDUCED") == '1'; }

static void test_problems(void) {
    int red = reduced();
    prob p;
    p = make_gaussian("gaussian", 6, 48, 96, 300, 24, 0, 0);
    check_problem(&p, 0);
    free_prob(&p);

    p = make_gaussian("gaussian centred", 6, 48, 96, 300, 24, 1, 3.0f);
    check_problem(&p, 0);
    free_prob(&p);

    p = make_gaussian("N=1 (OMP)", 5, 1, 64, 200, 16, 0, 0);
    check_problem(&p, 0);
    free_prob(&p);

    p = make_gaussian("odd N, centred", 4, 37, 80, 150, 20, 1, 1.0f);
    check_problem(&p, 0);
    free_prob(&p);

    p = make_sparse("sparse signals", 6, 40, 64, 256, 12, 8, 0.01f);
    check_problem(&p, 0);
    free_prob(&p);

    /* duplicates, scaled copies (exactly dependent) and zero atoms; signals built on them */
    p = make_sparse("duplicate atoms", 5, 30, 48, 120, 20, 6, 0.05f);
    for (int j = 60; j < 90; j++) {
        int src = j - 60;
        float sc = j % 3 == 0 ? 1.0f : (j % 3 == 1 ? 2.5f : -1.0f);
        for (int d = 0; d < p.D; d++) p.Dict[(size_t)j * p.D + d] = sc * p.Dict[(size_t)src * p.D + d];
    }
    for (int j = 90; j < 95; j++) memset(p.Dict + (size_t)j * p.D, 0, sizeof(float) * p.D);
    for (int h = 0; h < p.nh; h++) /* make the duplicated atoms strongly present */
        for (int i = 0; i < p.N; i++)
            for (int d = 0; d < p.D; d++)
                p.H[((size_t)h * p.N + i) * p.D + d] += 3.0f * rng_normal() * p.Dict[(size_t)(h % 30) * p.D + d];
    check_problem(&p, 0);
    free_prob(&p);

    /* k past the rank: 40 atoms spanning a 16-dimensional subspace of R^24 */
    p = make_gaussian("k >= rank", 4, 20, 24, 40, 60, 0, 0);
    {
        float *B = xmalloc(sizeof(float) * 16 * p.D), *A = xmalloc(sizeof(float) * p.V * 16);
        for (int i = 0; i < 16 * p.D; i++) B[i] = rng_normal();
        for (int i = 0; i < p.V * 16; i++) A[i] = (float)rng_int(-2, 2);
        for (int j = 0; j < p.V; j++)
            for (int d = 0; d < p.D; d++) {
                float s = 0;
                for (int u = 0; u < 16; u++) s += A[j * 16 + u] * B[u * p.D + d];
                p.Dict[(size_t)j * p.D + d] = s;
            }
        free(A);
        free(B);
    }
    check_problem(&p, 0);
    free_prob(&p);

    /* signals exactly in the span of 5 integer atoms: both stop once the residual vanishes */
    p = make_gaussian("exactly in span", 4, 16, 40, 100, 30, 0, 0);
    for (size_t i = 0; i < (size_t)p.V * p.D; i++) p.Dict[i] = (float)rng_int(-3, 3);
    for (int h = 0; h < p.nh; h++)
        for (int i = 0; i < p.N; i++) {
            float *x = p.H + ((size_t)h * p.N + i) * p.D;
            memset(x, 0, sizeof(float) * p.D);
            for (int u = 0; u < 5; u++) {
                float w = (float)rng_int(-2, 2);
                for (int d = 0; d < p.D; d++) x[d] += w * p.Dict[(size_t)(7 * u + h) * p.D + d];
            }
        }
    check_problem(&p, 0);
    free_prob(&p);

    /* an all-zero head among others: k = 0, ‖H‖ = 0 on both */
    p = make_gaussian("zero head", 3, 12, 32, 64, 10, 0, 0);
    memset(p.H + (size_t)p.N * p.D, 0, sizeof(float) * p.N * p.D);
    check_problem(&p, 0);
    free_prob(&p);

    /* many heads, in groups of 7 (the last one partial) and all at once; float4 path (N%4==0) */
    p = make_gaussian("many heads", red ? 30 : 200, 16, 32, 64, 8, 0, 0);
    check_problem(&p, 7);
    check_problem(&p, 0);
    free_prob(&p);

    p = red ? make_gaussian("medium", 2, 64, 128, 500, 24, 1, 0.5f)
            : make_gaussian("medium", 4, 256, 512, 2000, 40, 1, 0.5f);
    check_problem(&p, 0);
    free_prob(&p);
}

/* Inputs already on the device give bitwise the same results as host inputs. */
static void test_device_inputs(void) {
    prob p = make_gaussian("device inputs", 5, 24, 64, 128, 12, 1, 1.0f);
    size_t hb = sizeof(float) * (size_t)p.nh * p.N * p.D, db = sizeof(float) * (size_t)p.V * p.D;
    float *dH = NULL, *dD = NULL;
    if (cudaMalloc((void **)&dH, hb) != cudaSuccess || cudaMalloc((void **)&dD, db) != cudaSuccess ||
        cudaMemcpy(dH, p.H, hb, cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemcpy(dD, p.Dict, db, cudaMemcpyHostToDevice) != cudaSuccess) {
        expect(0, "device inputs: cudaMalloc/cudaMemcpy failed");
        return;
    }
    double t1, t2;
    hp_somp_result *a = run_gpu(&p, p.H, p.Dict, 0, HP_SOMP_QR_HOUSEHOLDER, &t1);
    hp_somp_result *b = run_gpu(&p, dH, dD, 0, HP_SOMP_QR_HOUSEHOLDER, &t2);
    int same = a && b;
    for (int h = 0; same && h < p.nh; h++) {
        same &= a[h].k == b[h].k && a[h].h_norm2 == b[h].h_norm2;
        same &= same && !memcmp(a[h].support, b[h].support, sizeof(int32_t) * a[h].k) &&
                !memcmp(a[h].evr, b[h].evr, sizeof(double) * a[h].k) &&
                !memcmp(a[h].coef, b[h].coef, sizeof(double) * (size_t)p.N * a[h].k);
    }
    /* the device inputs are read only */
    float *back = xmalloc(hb);
    int untouched = cudaMemcpy(back, dH, hb, cudaMemcpyDeviceToHost) == cudaSuccess &&
                    !memcmp(back, p.H, hb);
    free(back);
    expect(same && untouched, "device inputs: results identical to host inputs (%s), device H unchanged (%s)",
           same ? "yes" : "no", untouched ? "yes" : "no");
    if (a) free_results(a, p.nh);
    if (b) free_results(b, p.nh);
    cudaFree(dH);
    cudaFree(dD);
    free_prob(&p);
}

/* Non-finite inputs and bad arguments fail with a message and leave every out[h] empty. */
static void test_bad_inputs(void) {
    prob p = make_gaussian("bad", 3, 8, 16, 32, 4, 0, 0);
    hp_somp_opts o = {.k = p.k};
    hp_somp_result r[3];
    hp_err e = {{0}};
    p.H[(size_t)1 * p.N * p.D + 3 * p.D + 5] = NAN; /* head 1, row 3, column 5 = row 11 */
    poison(r, 3);
    int rc = hp_somp_cuda_batch(p.H, p.nh, p.N, p.D, p.Dict, p.V, &o, r, &e);
    expect(rc != 0 && strstr(e.msg, "signals[11][5] is not finite") && !r[0].support && !r[2].evr,
           "NaN in the signals is refused: \"%s\"", e.msg);
    p.H[(size_t)1 * p.N * p.D + 3 * p.D + 5] = 0;
    p.Dict[7 * p.D + 2] = INFINITY;
    e.msg[0] = 0;
    poison(r, 3);
    rc = hp_somp_cuda_batch(p.H, p.nh, p.N, p.D, p.Dict, p.V, &o, r, &e);
    expect(rc != 0 && strstr(e.msg, "dict[7][2] is not finite"), "Inf in the dictionary is refused: \"%s\"",
           e.msg);
    o.k = 0;
    e.msg[0] = 0;
    rc = hp_somp_cuda_batch(p.H, p.nh, p.N, p.D, p.Dict, p.V, &o, r, &e);
    expect(rc != 0 && strstr(e.msg, "k must be positive"), "k = 0 is refused: \"%s\"", e.msg);
    free_prob(&p);
}

#endif /* HP_HAVE_CUDA */

int main(void) {
    uint64_t seed = hp_test_seed();
    rng = seed;
    if (!comparator_selftest()) return 1;
    if (!hp_test_cuda_device()) return 77;
#ifdef HP_HAVE_CUDA
    test_problems();
    test_device_inputs();
    test_bad_inputs();
    printf("%d checks, %d failed (seed %llu)\n", n_checks, n_fail, (unsigned long long)seed);
    return n_fail ? 1 : 0;
#endif
}
