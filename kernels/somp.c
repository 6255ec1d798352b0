/* somp.c: CPU reference of Simultaneous Orthogonal Matching Pursuit (PAPER.md §3), in double.
 *
 * State after t steps, for one head (H: N×D signals, Dict: V×D atoms, S: the t chosen atoms):
 *   Q   t×D   orthonormal rows spanning the chosen atoms (Gram-Schmidt, applied twice)
 *   Rq  t×t   upper triangular with D[S]^T = Q^T·Rq, i.e. atom s = Σ_c Rq[c][s]·q_c
 *   R   N×D   residual H − (H Q^T) Q, updated by one projection per step
 *   P   V×N   correlations Dict·R^T, updated by one rank-1 term per step
 * Adding the unit direction q changes R by −(R q) q^T, hence P by −(Dict q)(R q)^T: the cost of
 * a step is O(V·(D+N)) for the pass over Dict and P, plus O(N·D + D·t), instead of the
 * O(V·D·N) of recomputing P. The only O(V·D·N) work is the initial P = Dict·H^T (one GEMM).
 * The least-squares coefficients are formed once at the end, W = (H Q^T)·Rq^{-T}, by
 * back-substitution: the same fit as re-solving on the support at every step. */
#include "somp.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* An atom whose component orthogonal to the support is below this fraction of its norm lies
 * in the span of the support (duplicates, k past the rank) and would add no fit, only huge
 * coefficients. The atoms are float32, so "in the span" holds only up to float rounding: a
 * scaled copy 2.5·a rounded to float keeps a ~2e-8 relative orthogonal part. 1e-6 (about 8
 * float32 ulps) rejects such atoms; any meaningful direction is far above it. */
#define SOMP_DEP_TOL 1e-6
/* A residual below this fraction of ‖H‖ is zero up to the rounding of double arithmetic. */
#define SOMP_RES_TOL 1e-12
/* Dictionary rows converted to double per GEMM block: small enough to stay in L2. */
#define SOMP_GEMM_ROWS 128

enum { ATOM_FREE = 0, ATOM_CHOSEN = 1, ATOM_UNUSABLE = 2 };

typedef struct somp_work {
    double *H;              /* N×D signals, centred if asked */
    double *R;              /* N×D residual */
    double *P;              /* V×N correlations of every atom with every residual row */
    double *score;          /* V: Σ_i |P[j,i]| */
    unsigned char *state;   /* V: ATOM_* */
    double *Q;              /* kmax×D orthonormal directions, one per row */
    double *Rq;             /* kmax×kmax upper triangular, row-major */
    double *v, *r, *rq;     /* D, kmax, N scratch */
    double *blk;            /* SOMP_GEMM_ROWS×D dictionary rows in double */
} somp_work;

static void work_free(somp_work *w) {
    free(w->H);
    free(w->R);
    free(w->P);
    free(w->score);
    free(w->state);
    free(w->Q);
    free(w->Rq);
    free(w->v);
    free(w->r);
    free(w->rq);
    free(w->blk);
    memset(w, 0, sizeof *w);
}

static int work_alloc(somp_work *w, int N, int D, int V, int kmax, hp_err *e) {
    memset(w, 0, sizeof *w);
    size_t nd = (size_t)N * D, vn, kd = (size_t)kmax * D, kk = (size_t)kmax * kmax;
    if (!hp_mul_ok((size_t)V, (size_t)N, &vn) || vn > SIZE_MAX / sizeof(double))
        return hp_errf(e, "somp: V×N = %d×%d correlations overflow the address space", V, N);
    w->H = malloc(nd * sizeof(double));
    w->R = malloc(nd * sizeof(double));
    w->P = malloc(vn * sizeof(double));
    w->score = malloc((size_t)V * sizeof(double));
    w->state = malloc((size_t)V);
    w->Q = malloc(kd * sizeof(double));
    w->Rq = calloc(kk, sizeof(double));
    w->v = malloc((size_t)D * sizeof(double));
    w->r = malloc((size_t)kmax * sizeof(double));
    w->rq = malloc((size_t)N * sizeof(double));
    w->blk = malloc((size_t)SOMP_GEMM_ROWS * D * sizeof(double));
    if (!w->H || !w->R || !w->P || !w->score || !w->state || !w->Q || !w->Rq || !w->v || !w->r ||
        !w->rq || !w->blk) {
        work_free(w);
        return hp_errf(e, "somp: out of memory (V×N = %d×%d correlations, %.1f MB)", V, N,
                       vn * 8.0 / 1e6);
    }
    return 0;
}

static int check_args(int N, int D, int V, const hp_somp_opts *o, hp_err *e) {
    if (!o || o->k <= 0) return hp_errf(e, "somp: k must be positive (got %d)", o ? o->k : 0);
    if (N <= 0 || D <= 0 || V <= 0)
        return hp_errf(e, "somp: empty problem (N=%d, D=%d, V=%d)", N, D, V);
    size_t t;
    if (!hp_mul_ok((size_t)N, (size_t)D, &t) || !hp_mul_ok((size_t)V, (size_t)D, &t))
        return hp_errf(e, "somp: sizes overflow (N=%d, D=%d, V=%d)", N, D, V);
    return 0;
}

/* NaN or Inf would poison every correlation and make the argmax meaningless. */
static int check_finite(const float *x, size_t rows, int D, const char *what, hp_err *e) {
    for (size_t i = 0; i < rows; i++)
        for (int d = 0; d < D; d++)
            if (!isfinite(x[i * D + d]))
                return hp_errf(e, "somp: %s[%zu][%d] is not finite (%g)", what, i, d, x[i * D + d]);
    return 0;
}

/* P = Dict·H^T block by block (Dict stays float in memory; its values are exact in double),
 * with the step-0 scores and the zero-atom flags taken while the block is hot in cache. */
static void initial_correlations(somp_work *w, const float *Dict, int V, int D, int N) {
    for (int j0 = 0; j0 < V; j0 += SOMP_GEMM_ROWS) {
        int nb = V - j0 < SOMP_GEMM_ROWS ? V - j0 : SOMP_GEMM_ROWS;
        for (int b = 0; b < nb; b++) {
            const float *a = Dict + (size_t)(j0 + b) * D;
            double *dst = w->blk + (size_t)b * D, nrm = 0;
            for (int d = 0; d < D; d++) {
                dst[d] = a[d];
                nrm += dst[d] * dst[d];
            }
            w->state[j0 + b] = nrm > 0 ? ATOM_FREE : ATOM_UNUSABLE; /* zero atoms never win */
        }
        double *Pb = w->P + (size_t)j0 * N;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, N, D, 1.0, w->blk, D, w->H, D,
                    0.0, Pb, N);
        for (int b = 0; b < nb; b++) {
            const double *p = Pb + (size_t)b * N;
            double s = 0;
            for (int i = 0; i < N; i++) s += fabs(p[i]);
            w->score[j0 + b] = s;
        }
    }
}

/* One pass over Dict and P for the new direction q with rq = R_old·q:
 * P[j,:] −= (Dict[j]·q)·rq^T, and the next step's scores. */
static void update_correlations(somp_work *w, const float *Dict, int V, int D, int N,
                                const double *q, int par) {
    const double *rq = w->rq;
    par = par && (size_t)V * (size_t)(D + N) >= ((size_t)1 << 18); /* tiny: threads cost more */
#pragma omp parallel for schedule(static) if (par)
    for (int j = 0; j < V; j++) {
        if (w->state[j] != ATOM_FREE) continue; /* never selectable again: P row unused */
        const float *a = Dict + (size_t)j * D;
        double dq = 0;
#pragma omp simd reduction(+ : dq)
        for (int d = 0; d < D; d++) dq += a[d] * q[d];
        double *p = w->P + (size_t)j * N, s = 0;
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < N; i++) {
            p[i] -= dq * rq[i];
            s += fabs(p[i]);
        }
        w->score[j] = s;
    }
}

/* Highest score among free atoms, lowest index on exact ties; -1 if none is free. */
static int best_free(const somp_work *w, int V) {
    int best = -1;
    double bs = -1.0;
    for (int j = 0; j < V; j++)
        if (w->state[j] == ATOM_FREE && w->score[j] > bs) {
            bs = w->score[j];
            best = j;
        }
    return best;
}

typedef struct cand {
    double score;
    int j;
} cand;

static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

/* Orthogonalises atom a against the t rows of Q (modified Gram-Schmidt, twice: one pass leaves
 * errors of order eps·cond that a second removes). On success appends q as row t of Q and
 * column t of Rq and returns 1; returns 0 if a lies in the span of Q. */
static int orthogonalise(somp_work *w, const float *a, int D, int t, int kmax) {
    double *v = w->v, *r = w->r, an = 0;
    for (int d = 0; d < D; d++) {
        v[d] = a[d];
        an += v[d] * v[d];
    }
    an = sqrt(an);
    for (int s = 0; s < t; s++) r[s] = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int s = 0; s < t; s++) {
            const double *qs = w->Q + (size_t)s * D;
            double c = 0;
            for (int d = 0; d < D; d++) c += qs[d] * v[d];
            for (int d = 0; d < D; d++) v[d] -= c * qs[d];
            r[s] += c;
        }
    double nv = 0;
    for (int d = 0; d < D; d++) nv += v[d] * v[d];
    nv = sqrt(nv);
    if (!(nv > SOMP_DEP_TOL * an)) return 0;
    double *q = w->Q + (size_t)t * D;
    for (int d = 0; d < D; d++) q[d] = v[d] / nv;
    for (int s = 0; s < t; s++) w->Rq[(size_t)s * kmax + t] = r[s];
    w->Rq[(size_t)t * kmax + t] = nv;
    return 1;
}

/* Picks the next atom: the best free one that is independent of the support. Dependent
 * candidates are marked unusable; after the first one the rest are walked in score order so a
 * rank-deficient dictionary costs one sort, not one O(V) scan per rejected atom. */
static int select_atom(somp_work *w, const float *Dict, int V, int D, int t, int kmax, hp_err *e) {
    int j = best_free(w, V);
    if (j < 0) return -1;
    if (orthogonalise(w, Dict + (size_t)j * D, D, t, kmax)) return j;
    w->state[j] = ATOM_UNUSABLE;
    int nc = 0;
    for (int i = 0; i < V; i++) nc += w->state[i] == ATOM_FREE;
    if (!nc) return -1;
    cand *c = malloc((size_t)nc * sizeof *c);
    if (!c) {
        hp_errf(e, "somp: out of memory");
        return -2;
    }
    nc = 0;
    for (int i = 0; i < V; i++)
        if (w->state[i] == ATOM_FREE) c[nc++] = (cand){w->score[i], i};
    qsort(c, (size_t)nc, sizeof *c, cand_cmp);
    int found = -1;
    for (int i = 0; i < nc && found < 0; i++) {
        if (orthogonalise(w, Dict + (size_t)c[i].j * D, D, t, kmax))
            found = c[i].j;
        else
            w->state[c[i].j] = ATOM_UNUSABLE;
    }
    free(c);
    return found;
}

/* SOMP on one head; inputs already validated. par: use OpenMP threads inside (false when the
 * caller already runs heads in parallel). */
static int somp_head(const float *Hf, int N, int D, const float *Dict, int V, const hp_somp_opts *o,
                     int par, hp_somp_result *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    int kmax = o->k;
    if (kmax > D) kmax = D; /* no more than rank(Dict) ≤ min(D, V) atoms can be independent */
    if (kmax > V) kmax = V;
    somp_work w;
    if (work_alloc(&w, N, D, V, kmax, e)) return -1;
    out->support = malloc((size_t)kmax * sizeof(int32_t));
    out->evr = malloc((size_t)kmax * sizeof(double));
    if (!out->support || !out->evr) {
        work_free(&w);
        hp_somp_result_free(out);
        return hp_errf(e, "somp: out of memory");
    }

    size_t nd = (size_t)N * D;
    for (size_t i = 0; i < nd; i++) w.H[i] = Hf[i];
    if (o->center)
        for (int d = 0; d < D; d++) {
            double m = 0;
            for (int i = 0; i < N; i++) m += w.H[(size_t)i * D + d];
            m /= N;
            for (int i = 0; i < N; i++) w.H[(size_t)i * D + d] -= m;
        }
    double hh = 0;
    for (size_t i = 0; i < nd; i++) hh += w.H[i] * w.H[i];
    out->h_norm2 = hh;
    int t = 0;
    if (hh > 0) { /* a zero signal is explained by nothing: k = 0 */
        memcpy(w.R, w.H, nd * sizeof(double));
        initial_correlations(&w, Dict, V, D, N);
        double prev = 0;
        while (t < kmax) {
            int j = select_atom(&w, Dict, V, D, t, kmax, e);
            if (j == -2) {
                work_free(&w);
                hp_somp_result_free(out);
                return -1;
            }
            if (j < 0) break; /* every remaining atom is zero or dependent on the support */
            w.state[j] = ATOM_CHOSEN;
            out->support[t] = j;
            const double *q = w.Q + (size_t)t * D;
            /* rq = R q; R −= rq q^T; ‖R‖² recomputed exactly in the same pass (no drift). */
            double rr = 0;
            for (int i = 0; i < N; i++) {
                double *ri = w.R + (size_t)i * D, c = 0;
                for (int d = 0; d < D; d++) c += ri[d] * q[d];
                for (int d = 0; d < D; d++) {
                    ri[d] -= c * q[d];
                    rr += ri[d] * ri[d];
                }
                w.rq[i] = c;
            }
            double evr = 1.0 - rr / hh;
            if (evr < prev) evr = prev; /* adding an atom cannot lose fit; rounding might */
            out->evr[t] = prev = evr;
            t++;
            if (t == kmax || rr <= SOMP_RES_TOL * SOMP_RES_TOL * hh) break;
            update_correlations(&w, Dict, V, D, N, q, par);
        }
    }
    out->k = t;

    /* W = (H Q^T) Rq^{-T}: row i solves Rq w_i = (Q h_i), back-substitution. */
    out->coef = malloc((t ? (size_t)N * t : 1) * sizeof(double));
    if (!out->coef) {
        work_free(&w);
        hp_somp_result_free(out);
        return hp_errf(e, "somp: out of memory");
    }
    if (t > 0) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, t, D, 1.0, w.H, D, w.Q, D, 0.0,
                    out->coef, t);
        for (int i = 0; i < N; i++) {
            double *c = out->coef + (size_t)i * t;
            for (int s = t - 1; s >= 0; s--) {
                double x = c[s];
                for (int u = s + 1; u < t; u++) x -= w.Rq[(size_t)s * kmax + u] * c[u];
                c[s] = x / w.Rq[(size_t)s * kmax + s];
            }
        }
    }
    work_free(&w);
    return 0;
}

int hp_somp_cpu(const float *H, int N, int D, const float *Dict, int V, const hp_somp_opts *o,
                hp_somp_result *out, hp_err *e) {
    memset(out, 0, sizeof *out);
    if (check_args(N, D, V, o, e) || check_finite(H, (size_t)N, D, "signals", e) ||
        check_finite(Dict, (size_t)V, D, "dict", e))
        return -1;
    return somp_head(H, N, D, Dict, V, o, !omp_in_parallel(), out, e);
}

int hp_somp_cpu_batch(const float *H, int nheads, int N, int D, const float *Dict, int V,
                      const hp_somp_opts *o, hp_somp_result *out, hp_err *e) {
    if (nheads <= 0) return hp_errf(e, "somp: no heads (nheads=%d)", nheads);
    memset(out, 0, (size_t)nheads * sizeof *out);
    size_t tot;
    if (check_args(N, D, V, o, e)) return -1;
    if (!hp_mul_ok((size_t)nheads, (size_t)N * D, &tot))
        return hp_errf(e, "somp: sizes overflow (nheads=%d, N=%d, D=%d)", nheads, N, D);
    if (check_finite(H, (size_t)nheads * N, D, "signals", e) ||
        check_finite(Dict, (size_t)V, D, "dict", e))
        return -1;
    if (nheads == 1) return hp_somp_cpu(H, N, D, Dict, V, o, out, e) ? -1 : 0;

    /* One head per thread, each with single-threaded BLAS: heads are independent and equal in
     * cost, so this beats threading inside each head. The BLAS thread count is global state,
     * so it is set once around the parallel region rather than by every thread inside it. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int failed = INT_MAX;
    hp_err first = {{0}};
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < nheads; h++) {
        hp_err he = {{0}};
        if (somp_head(H + (size_t)h * N * D, N, D, Dict, V, o, 0, &out[h], &he)) {
#pragma omp critical(somp_batch_err)
            if (h < failed) {
                failed = h;
                first = he;
            }
        }
    }
    openblas_set_num_threads(blas_threads);
    if (failed != INT_MAX) {
        for (int h = 0; h < nheads; h++) hp_somp_result_free(&out[h]);
        return hp_errf(e, "head %d: %s", failed, first.msg);
    }
    return 0;
}

void hp_somp_result_free(hp_somp_result *r) {
    if (!r) return;
    free(r->support);
    free(r->coef);
    free(r->evr);
    memset(r, 0, sizeof *r);
}
