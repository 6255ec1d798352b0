/* somp.cu: Simultaneous Orthogonal Matching Pursuit (PAPER.md §3) on the GPU, all heads of a
 * group advanced together, every array of the iteration resident on the device. The algorithm
 * is the CPU reference's (kernels/somp.c), step for step; only supports, coefficients and EVRs
 * come back to the host.
 *
 * State of a group of G heads (layouts row-major; g head, i sample, j atom, t step):
 *   R      [G][N][D]   fp32  residual, initialised with the (centred) signals
 *   P      [V][G][N]   fp32  correlations Dict·R^T; one SGEMM over the stacked residuals of all
 *                            G heads gives this layout directly
 *   score  [G][V]      fp64  Σ_i |P[j][g][i]|, the selection rule
 *   state  [G][V]      u8    free / chosen / unusable (zero atom, or dependent on the support)
 *   Q      [G][kmax][D] fp64 orthonormal directions of the chosen atoms
 *   Rq     [G][kmax][kmax] fp64 upper triangular, D[S]^T = Q^T·Rq
 *   C      [G][N][kmax] fp64 C[:, t] = R_t q_t; becomes W = C·Rq^{-T} in place at the end
 * One step, all heads at once:
 *   select     one block per head: argmax of score over free atoms (lowest index on ties)
 *   gather     the chosen atom a, in fp64
 *   orthogonalise, one of two variants (hp_somp_qr, somp_cuda.h):
 *     householder_cusolver (default): the support's QR is kept as Householder reflectors
 *              (LAPACK's geqrf layout, HH [G][kmax][D] column-major per head, tau [G][kmax]).
 *              Per head that needs an atom: cusolverDnDormqr applies the t existing reflectors
 *              to the atom (Q^T a: its coordinates in rows 0..t-1, the rest orthogonal to the
 *              support), cusolverDnDgeqrf factors that tail (the new reflector and R[t][t]),
 *              and cusolverDnDormqr with the t+1 reflectors applied to e_t gives q_t. cuSOLVER
 *              has no batched geqrf/ormqr, so this is one short sequence of calls per head.
 *     cgs2_gemv: r1 = Q a, v = a − Q^T r1, r2 = Q v, v −= Q^T r2: four
 *              cublasDgemvStridedBatched over all heads at once (classical Gram-Schmidt
 *              applied twice: orthogonal to working precision, "twice is enough").
 *              The CPU does modified Gram-Schmidt twice; all three give the same directions
 *              up to fp64 rounding (Householder's q_t may have the opposite sign, with R[t][t]
 *              negative: C and Rq change sign together and W does not).
 *   finalize   |R[t][t]| (= ‖v‖) <= SOMP_DEP_TOL·‖a‖: the atom lies in the span, mark it
 *              unusable and select again (the host loops while any head is pending); else q_t
 *              becomes row t of Q, the atom's coordinates column t of Rq
 *   project    one block per residual row: c = r·q, r −= c q, ‖r‖²  (C[:, t] = c)
 *   step_end   ‖R‖² per head, EVR = 1 − ‖R‖²/‖H‖², stop when k is reached or the residual
 *              vanishes
 *   correlations  DQ = Dict·q for all heads (one SGEMM), then one pass over P:
 *              P[j][g][:] −= DQ[g][j]·c^T and the new scores (R changed by −c q^T)
 * At the end W = C·Rq^{-T}: cublasDtrsm per head (householder_cusolver), or a back-substitution
 * kernel, one thread per (head, sample) (cgs2_gemv).
 *
 * Precision, and why the results match the fp64 CPU reference:
 *   - Dictionary fp32, as given: the atoms the CPU uses are the same float32 values, so no
 *     rounding of the problem itself (a bf16 copy would perturb every atom by up to 2^-9 and
 *     shift EVRs by ~1e-3; the dictionary is at most V·D·4 = 0.5 GB, small next to P).
 *   - Orthogonalisation in fp64 (Q, Rq, the dependence test): Q^T Q = I to ~1e-16 as on the
 *     CPU, and the test ‖v‖ <= 1e-6·‖a‖ is decided on the same numbers up to fp64 rounding,
 *     so duplicate, scaled and rank-exceeding atoms are rejected exactly where the CPU
 *     rejects them. This is O(k·D) per head and step: negligible.
 *   - Residual fp32 with fp64 accumulation of every dot product and norm. Each update rounds
 *     each element once (relative 2^-24); after k steps R carries ~sqrt(k)·6e-8·‖H‖ absolute
 *     error, so EVR = 1 − ‖R‖²/‖H‖² is off by ~1e-7·sqrt(k): far inside the 1e-4 required.
 *   - Correlations fp32 (SGEMM without TF32, then fp32 rank-1 updates): each entry carries
 *     ~sqrt(D)·6e-8·‖d_j‖‖h_i‖; scores therefore agree with the CPU's to ~1e-6 relative, and
 *     the argmax can only differ where the CPU's top two scores are that close (a near-tie;
 *     tests/test_somp_cuda.c proves every divergence to be one, in fp64). Scores are summed in
 *     fp64 so that summation adds nothing.
 *   - Coefficients: C = R_t q_t ≈ H q_t (q_t ⟂ the earlier directions) with ~1e-7 relative
 *     error, then an fp64 triangular solve: relative error ~1e-7·cond(D[S]).
 *   - The residual-vanished stop uses SOMP_RES_TOL_F32 = 1e-5 (‖R‖ <= 1e-5·‖H‖) instead of the
 *     CPU's 1e-12, because an fp32 residual of a signal that lies exactly in the span is
 *     ~1e-7·‖H‖, not 0. Between the two thresholds the EVR is above 1 − 1e-10, and the CPU's
 *     further atoms fit rounding noise.
 * All reductions run in a fixed order (no floating-point atomics): a run is bitwise
 * reproducible on the same GPU and group size.
 *
 * Memory per head: 4·N·D (R) + 4·V·N (P) + 8·kmax·(D + N + kmax) + ~13·V + ~40·D bytes, plus
 * 8·kmax·D (the reflectors) for householder_cusolver; the group size comes from
 * cudaMemGetInfo. nvcc compiles this file (HP_HAVE_CUDA builds), and tests/cuda_emu as host
 * C++. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "nvtx.h"
#include "somp_cuda.h"

/* The same threshold as somp.c: an atom whose component orthogonal to the support is below
 * this fraction of its norm is dependent on the support. Decided in fp64 as on the CPU. */
#define SOMP_DEP_TOL 1e-6
/* Residual vanished (see above): ‖R‖ <= this · ‖H‖ with an fp32 residual. */
#define SOMP_RES_TOL_F32 1e-5
/* Device memory left free for cuBLAS, the runtime and fragmentation. */
#define SOMP_RESERVE_BYTES ((size_t)512 << 20)
#define SOMP_BLAS_WS ((size_t)32 << 20)
#define MIB (1024.0 * 1024.0)

enum { ATOM_FREE = 0, ATOM_CHOSEN = 1, ATOM_UNUSABLE = 2 };
enum { CNT_PENDING = 0, CNT_ACCEPTED = 1, CNT_BAD = 2 };

/* ---- error checking: every call records statement, file and line in e ----------------------- */

static int cuda_fail(hp_err *e, const char *what, const char *file, int line, const char *msg) {
    return hp_errf(e, "somp (cuda): %s:%d: %s: %s", file, line, what, msg);
}

#define CK(call)                                                                                  \
    do {                                                                                          \
        cudaError_t rc_ = (call);                                                                 \
        if (rc_ != cudaSuccess) return cuda_fail(e, #call, __FILE__, __LINE__, cudaGetErrorString(rc_)); \
    } while (0)

#define CB(call)                                                                                  \
    do {                                                                                          \
        cublasStatus_t rc_ = (call);                                                              \
        if (rc_ != CUBLAS_STATUS_SUCCESS)                                                         \
            return cuda_fail(e, #call, __FILE__, __LINE__, cublasGetStatusString(rc_));           \
    } while (0)

#define CS(call)                                                                                  \
    do {                                                                                          \
        cusolverStatus_t rc_ = (call);                                                            \
        if (rc_ != CUSOLVER_STATUS_SUCCESS) {                                                     \
            char msg_[48];                                                                        \
            snprintf(msg_, sizeof msg_, "cusolverStatus_t %d", (int)rc_);                         \
            return cuda_fail(e, #call, __FILE__, __LINE__, msg_);                                 \
        }                                                                                         \
    } while (0)

/* A kernel launch: the launch statement, then its launch status. */
#define LAUNCH(...)                                                                               \
    do {                                                                                          \
        __VA_ARGS__;                                                                              \
        cudaError_t rc_ = cudaGetLastError();                                                     \
        if (rc_ != cudaSuccess) return cuda_fail(e, #__VA_ARGS__, __FILE__, __LINE__, cudaGetErrorString(rc_)); \
    } while (0)

/* ---- reductions ----------------------------------------------------------------------------- */

static __device__ __forceinline__ double warp_sum(double x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_down_sync(0xffffffffu, x, o);
    return x;
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024), fixed order; result in every
 * thread. sh: 32 doubles of shared memory; callable repeatedly. */
static __device__ double block_sum(double x, double *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    x = warp_sum(x);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[w] = x;
    __syncthreads();
    x = lane < nw ? sh[lane] : 0.0;
    if (w == 0) x = warp_sum(x);
    __syncthreads(); /* every warp has read sh before thread 0 overwrites sh[0] */
    if (threadIdx.x == 0) sh[0] = x;
    __syncthreads();
    return sh[0];
}

/* ---- kernels -------------------------------------------------------------------------------- */

#define NB 256 /* threads per block of the per-row and per-head kernels */

/* *first = the lowest index of a non-finite element of x[0..n). */
static __global__ void find_nonfinite(const float *x, size_t n, unsigned long long *first) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        if (!isfinite(x[i])) atomicMin(first, (unsigned long long)i);
}

/* ok[j] = atom j is not all zeros (a zero atom never wins, as on the CPU). One block per atom. */
static __global__ void atom_nonzero(const float *dict, int D, unsigned char *ok) {
    __shared__ double sh[32];
    const float *a = dict + (size_t)blockIdx.x * D;
    double s = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) s += (double)a[d] * a[d];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) ok[blockIdx.x] = s > 0;
}

/* Subtracts each head's column means (fp64 sums). grid (ceil(D/NB), G). */
static __global__ void center_columns(float *R, int N, int D) {
    int d = blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= D) return;
    float *h = R + (size_t)blockIdx.y * N * D + d;
    double m = 0;
    for (int i = 0; i < N; i++) m += h[(size_t)i * D];
    m /= N;
    for (int i = 0; i < N; i++) h[(size_t)i * D] = (float)((double)h[(size_t)i * D] - m);
}

/* rown[r] = ‖R row r‖² (fp64), one block per row of the G·N rows. */
static __global__ void row_norms(const float *R, int D, double *rown) {
    __shared__ double sh[32];
    const float *r = R + (size_t)blockIdx.x * D;
    double s = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) s += (double)r[d] * r[d];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) rown[blockIdx.x] = s;
}

/* Per head: ‖H‖² from the row norms, the head's starting state (a zero signal is explained by
 * nothing: k = 0), every atom's state, and NaN in the outputs so that an unwritten entry shows. */
static __global__ void init_heads(const double *rown, int N, int V, int kmax,
                                  const unsigned char *atom_ok, double *hh, unsigned char *active,
                                  int *kcur, unsigned char *state, double *evr, int32_t *support) {
    __shared__ double sh[32];
    int g = blockIdx.x;
    double s = 0;
    for (int i = threadIdx.x; i < N; i += blockDim.x) s += rown[(size_t)g * N + i];
    s = block_sum(s, sh);
    for (int j = threadIdx.x; j < V; j += blockDim.x)
        state[(size_t)g * V + j] = atom_ok[j] ? ATOM_FREE : ATOM_UNUSABLE;
    for (int t = threadIdx.x; t < kmax; t += blockDim.x) {
        evr[(size_t)g * kmax + t] = __longlong_as_double(-1ll); /* NaN */
        support[(size_t)g * kmax + t] = -1;
    }
    if (threadIdx.x == 0) {
        hh[g] = s;
        active[g] = s > 0;
        kcur[g] = 0;
    }
}

/* One warp per (atom j, head g) row of P[V][G][N], for active heads and free atoms only:
 * with `update`, P[j][g][:] −= dq[g][j]·c[g][:] (the residual lost c q^T); then
 * score[g][j] = Σ_i |P[j][g][i]| in fp64. VEC: N % 4 == 0, float4 accesses. */
template <bool VEC>
static __global__ void correlations_update(float *P, const float *DQ, const float *cf,
                                           const unsigned char *state, const unsigned char *active,
                                           double *score, int V, int G, int N, int update) {
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= (size_t)V * G) return;
    int j = (int)(row / G), g = (int)(row % G);
    if (!active[g] || state[(size_t)g * V + j] != ATOM_FREE) return; /* never selectable */
    float *p = P + row * N;
    const float *c = cf + (size_t)g * N;
    float dq = update ? DQ[(size_t)g * V + j] : 0.0f;
    double s = 0;
    if (VEC) {
        float4 *p4 = reinterpret_cast<float4 *>(p);
        const float4 *c4 = reinterpret_cast<const float4 *>(c);
        for (int i = lane; i < N / 4; i += 32) {
            float4 x = p4[i];
            if (update) {
                float4 y = c4[i];
                x.x = fmaf(-dq, y.x, x.x);
                x.y = fmaf(-dq, y.y, x.y);
                x.z = fmaf(-dq, y.z, x.z);
                x.w = fmaf(-dq, y.w, x.w);
                p4[i] = x;
            }
            s += (double)fabsf(x.x) + (double)fabsf(x.y) + (double)fabsf(x.z) + (double)fabsf(x.w);
        }
    } else {
        for (int i = lane; i < N; i += 32) {
            float x = p[i];
            if (update) {
                x = fmaf(-dq, c[i], x);
                p[i] = x;
            }
            s += (double)fabsf(x);
        }
    }
    s = warp_sum(s);
    if (lane == 0) score[(size_t)g * V + j] = s;
}

/* Start of a step: every active head needs an atom. */
static __global__ void begin_step(const unsigned char *active, unsigned char *need, int G,
                                  int *cnt) {
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g < G) need[g] = active[g];
    if (g == 0) cnt[CNT_PENDING] = cnt[CNT_ACCEPTED] = 0;
}

/* sel[g] = the free atom of highest score, lowest index on exact ties; -1 if none is free.
 * One block per head that still needs an atom. */
static __global__ void select_atom(const double *score, const unsigned char *state,
                                   const unsigned char *need, int V, int *sel) {
    __shared__ double bs_sh[NB];
    __shared__ int bj_sh[NB];
    int g = blockIdx.x;
    if (!need[g]) return;
    const double *sc = score + (size_t)g * V;
    const unsigned char *st = state + (size_t)g * V;
    double bs = -1.0;
    int bj = INT_MAX;
    for (int j = threadIdx.x; j < V; j += blockDim.x)
        if (st[j] == ATOM_FREE && sc[j] > bs) { /* j ascends: the first of equals stays */
            bs = sc[j];
            bj = j;
        }
    bs_sh[threadIdx.x] = bs;
    bj_sh[threadIdx.x] = bj;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) {
            double os = bs_sh[threadIdx.x + w];
            int oj = bj_sh[threadIdx.x + w];
            if (os > bs_sh[threadIdx.x] || (os == bs_sh[threadIdx.x] && oj < bj_sh[threadIdx.x])) {
                bs_sh[threadIdx.x] = os;
                bj_sh[threadIdx.x] = oj;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) sel[g] = bj_sh[0] == INT_MAX ? -1 : bj_sh[0];
}

/* a = v = Dict[sel[g]] in fp64 for heads that need an atom, 0 otherwise. grid (ceil(D/NB), G). */
static __global__ void gather_atom(const float *dict, const int *sel, const unsigned char *need,
                                   int D, double *a, double *v) {
    int d = blockIdx.x * blockDim.x + threadIdx.x, g = blockIdx.y;
    if (d >= D) return;
    int j = need[g] ? sel[g] : -1;
    double x = j >= 0 ? (double)dict[(size_t)j * D + d] : 0.0;
    a[(size_t)g * D + d] = x;
    v[(size_t)g * D + d] = x;
}

/* Accepts or rejects each pending head's atom after CGS2 (v = a minus its projection on Q,
 * r1 + r2 = its coordinates in Q). Accepted: q = v/‖v‖ becomes row t of Q (and qf, fp32),
 * column t of Rq is (r1 + r2, ‖v‖). Rejected (in the span): marked unusable, the head stays
 * pending. No free atom: the head is finished. One block per head. */
static __global__ void finalize_atom(const double *a, const double *v, const double *r1,
                                     const double *r2, const int *sel, int t, int D, int V,
                                     int kmax, unsigned char *need, unsigned char *active,
                                     unsigned char *state, double *Q, float *qf, double *Rq,
                                     int32_t *support, int *cnt) {
    __shared__ double sh[32];
    int g = blockIdx.x;
    if (!need[g]) return;
    int j = sel[g];
    if (j < 0) { /* every remaining atom is zero or dependent: the head stops at k = t */
        if (threadIdx.x == 0) {
            need[g] = 0;
            active[g] = 0;
        }
        return;
    }
    const double *vg = v + (size_t)g * D, *ag = a + (size_t)g * D;
    double nv = 0, an = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        nv += vg[d] * vg[d];
        an += ag[d] * ag[d];
    }
    nv = sqrt(block_sum(nv, sh));
    an = sqrt(block_sum(an, sh));
    if (!(nv > SOMP_DEP_TOL * an)) {
        if (threadIdx.x == 0) {
            state[(size_t)g * V + j] = ATOM_UNUSABLE;
            atomicAdd(&cnt[CNT_PENDING], 1);
        }
        return;
    }
    double *q = Q + ((size_t)g * kmax + t) * D;
    float *qfg = qf + (size_t)g * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        double x = vg[d] / nv;
        q[d] = x;
        qfg[d] = (float)x;
    }
    double *rq = Rq + (size_t)g * kmax * kmax;
    for (int s = threadIdx.x; s < t; s += blockDim.x)
        rq[(size_t)s * kmax + t] = r1[(size_t)g * kmax + s] + r2[(size_t)g * kmax + s];
    if (threadIdx.x == 0) {
        rq[(size_t)t * kmax + t] = nv;
        support[(size_t)g * kmax + t] = j;
        state[(size_t)g * V + j] = ATOM_CHOSEN;
        need[g] = 0;
        atomicAdd(&cnt[CNT_ACCEPTED], 1);
    }
}

/* householder_cusolver's finalize: col = Q^T a after the new reflector (R's column t, R[t][t] in
 * row t), qv = q_t. The same decisions as finalize_atom with |R[t][t]| in place of ‖v‖. */
static __global__ void hh_finalize_atom(const double *a, const double *HH, const double *qv,
                                        const int *sel, int t, int D, int V, int kmax,
                                        unsigned char *need, unsigned char *active,
                                        unsigned char *state, double *Q, float *qf, double *Rq,
                                        int32_t *support, int *cnt) {
    __shared__ double sh[32];
    int g = blockIdx.x;
    if (!need[g]) return;
    int j = sel[g];
    if (j < 0) {
        if (threadIdx.x == 0) {
            need[g] = 0;
            active[g] = 0;
        }
        return;
    }
    const double *ag = a + (size_t)g * D, *col = HH + ((size_t)g * kmax + t) * D;
    const double *qg = qv + (size_t)g * D;
    double an = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) an += ag[d] * ag[d];
    an = sqrt(block_sum(an, sh));
    if (!(fabs(col[t]) > SOMP_DEP_TOL * an)) {
        if (threadIdx.x == 0) {
            state[(size_t)g * V + j] = ATOM_UNUSABLE;
            atomicAdd(&cnt[CNT_PENDING], 1);
        }
        return;
    }
    double *q = Q + ((size_t)g * kmax + t) * D;
    float *qfg = qf + (size_t)g * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        q[d] = qg[d];
        qfg[d] = (float)qg[d];
    }
    double *rq = Rq + (size_t)g * kmax * kmax;
    for (int s = threadIdx.x; s <= t; s += blockDim.x) rq[(size_t)s * kmax + t] = col[s];
    if (threadIdx.x == 0) {
        support[(size_t)g * kmax + t] = j;
        state[(size_t)g * V + j] = ATOM_CHOSEN;
        need[g] = 0;
        atomicAdd(&cnt[CNT_ACCEPTED], 1);
    }
}

/* e[g] = the unit vector e_t (length D) for every head. grid (ceil(D/NB), G). */
static __global__ void unit_vectors(double *e, int D, int t) {
    int d = blockIdx.x * blockDim.x + threadIdx.x;
    if (d < D) e[(size_t)blockIdx.y * D + d] = d == t ? 1.0 : 0.0;
}

/* One block per residual row r_i of an active head: c = r_i·q_t, r_i −= c q_t, and the new
 * ‖r_i‖² (all fp64 arithmetic, R rounded to fp32 once). C[g][i][t] = c, cf[g][i] = (float)c. */
static __global__ void project_rows(float *R, const double *Q, const unsigned char *active, int t,
                                    int N, int D, int kmax, double *C, float *cf, double *rown) {
    __shared__ double sh[32];
    size_t row = blockIdx.x;
    int g = (int)(row / N);
    if (!active[g]) return;
    float *r = R + row * D;
    const double *q = Q + ((size_t)g * kmax + t) * D;
    double c = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) c += (double)r[d] * q[d];
    c = block_sum(c, sh);
    double s = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float x = (float)((double)r[d] - c * q[d]);
        r[d] = x;
        s += (double)x * x;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) {
        C[row * kmax + t] = c;
        cf[row] = (float)c;
        rown[row] = s;
    }
}

/* End of step t for each active head: EVR from the exact residual norm (never decreasing:
 * adding an atom cannot lose fit, rounding might), and the stop tests of the CPU version. */
static __global__ void step_end(const double *rown, const double *hh, int t, int N, int kmax,
                                unsigned char *active, int *kcur, double *evr) {
    __shared__ double sh[32];
    int g = blockIdx.x;
    if (!active[g]) return;
    double rr = 0;
    for (int i = threadIdx.x; i < N; i += blockDim.x) rr += rown[(size_t)g * N + i];
    rr = block_sum(rr, sh);
    if (threadIdx.x == 0) {
        double e = 1.0 - rr / hh[g], prev = t > 0 ? evr[(size_t)g * kmax + t - 1] : 0.0;
        if (e < prev) e = prev;
        evr[(size_t)g * kmax + t] = e;
        kcur[g] = t + 1;
        if (t + 1 == kmax || rr <= SOMP_RES_TOL_F32 * SOMP_RES_TOL_F32 * hh[g]) active[g] = 0;
    }
}

/* W = C·Rq^{-T} in place: row i of head g solves Rq[:k,:k] w = C[g][i][:k] by back-substitution
 * (fp64). One thread per (head, sample). */
static __global__ void solve_coefficients(double *C, const double *Rq, const int *kcur, int N,
                                          int kmax, int G) {
    size_t row = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= (size_t)G * N) return;
    int g = (int)(row / N), k = kcur[g];
    double *c = C + row * kmax;
    const double *rq = Rq + (size_t)g * kmax * kmax;
    for (int s = k - 1; s >= 0; s--) {
        double x = c[s];
        for (int u = s + 1; u < k; u++) x -= rq[(size_t)s * kmax + u] * c[u];
        c[s] = x / rq[(size_t)s * kmax + s];
    }
}

/* ---- host side ------------------------------------------------------------------------------ */

/* Device buffers of one group of up to G heads, carved from one allocation. */
typedef struct somp_bufs {
    void *block;
    size_t block_bytes;
    float *R;               /* [G][N][D] residual */
    float *P;               /* [V][G][N] correlations */
    double *score;          /* [G][V] */
    unsigned char *state;   /* [G][V] */
    float *DQ;              /* [G][V] Dict·q_t */
    double *Q;              /* [G][kmax][D] */
    float *qf;              /* [G][D] q_t in fp32 for the DQ product */
    double *Rq;             /* [G][kmax][kmax] */
    double *a, *v;          /* [G][D] chosen atom, its orthogonal part */
    double *r1, *r2;        /* [G][kmax] its coordinates in Q (two CGS passes) */
    double *C;              /* [G][N][kmax] R_t q_t, then W */
    float *cf;              /* [G][N] R_t q_t in fp32 for the P update */
    double *rown;           /* [G][N] residual row norms */
    double *hh;             /* [G] ‖H‖² */
    double *evr;            /* [G][kmax] */
    int32_t *support;       /* [G][kmax] */
    int *sel, *kcur;        /* [G] */
    unsigned char *active;  /* [G] head still iterating */
    unsigned char *need;    /* [G] head still looking for this step's atom */
    int *cnt;               /* [3] CNT_* counters */
    unsigned long long *bad; /* first non-finite index */
    /* householder_cusolver only (no bytes for cgs2_gemv) */
    double *HH;             /* [G][kmax][D] reflectors below the diagonal, R on and above */
    double *tau;            /* [G][kmax] */
    double *qv;             /* [G][D] e_t, then q_t */
} somp_bufs;

/* Bytes of the group buffers for G heads, and (with b) the carving of base into them. */
static size_t layout(somp_bufs *b, char *base, size_t G, size_t N, size_t D, size_t V,
                     size_t kmax, int hh) {
    size_t off = 0;
#define CARVE(field, count)                                                                       \
    do {                                                                                          \
        off = (off + 255) & ~(size_t)255;                                                         \
        if (b) b->field = (decltype(b->field))(base + off);                                       \
        off += (size_t)(count) * sizeof(*b->field);                                               \
    } while (0)
    CARVE(R, G * N * D);
    CARVE(P, V * G * N);
    CARVE(score, G * V);
    CARVE(state, G * V);
    CARVE(DQ, G * V);
    CARVE(Q, G * kmax * D);
    CARVE(qf, G * D);
    CARVE(Rq, G * kmax * kmax);
    CARVE(a, G * D);
    CARVE(v, G * D);
    CARVE(r1, G * kmax);
    CARVE(r2, G * kmax);
    CARVE(C, G * N * kmax);
    CARVE(cf, G * N);
    CARVE(rown, G * N);
    CARVE(hh, G);
    CARVE(evr, G * kmax);
    CARVE(support, G * kmax);
    CARVE(sel, G);
    CARVE(kcur, G);
    CARVE(active, G);
    CARVE(need, G);
    CARVE(cnt, 3);
    CARVE(bad, 1);
    CARVE(HH, hh ? G * kmax * D : 0);
    CARVE(tau, hh ? G * kmax : 0);
    CARVE(qv, hh ? G * D : 0);
#undef CARVE
    return off;
}

typedef struct somp_ctx {
    int N, D, V, kmax, center;
    hp_somp_qr qr;
    cudaStream_t st;
    cublasHandle_t blas;
    cusolverDnHandle_t solver; /* householder_cusolver */
    double *solver_ws;         /* its workspace, solver_lwork doubles */
    int solver_lwork;
    int *solver_info;          /* device: cuSOLVER's info word */
    unsigned char *h_need;     /* pinned [G]: which heads look for an atom */
    void *blas_ws;
    const float *dict;         /* device [V][D]: the caller's or dict_own */
    float *dict_own;
    unsigned char *atom_ok;    /* device [V] */
    unsigned long long *dbad;  /* device: first non-finite index of the dictionary */
    int *hcnt;                 /* pinned [3] */
    unsigned long long *hbad;  /* pinned [1] */
    somp_bufs b;
    int G;                     /* heads the buffers hold */
    /* host staging of one group's results */
    double *h_C, *h_evr, *h_hh;
    int32_t *h_support;
    int *h_k;
} somp_ctx;

static int is_device_pointer(const void *p) {
    cudaPointerAttributes at;
    if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
        cudaGetLastError(); /* an unknown host pointer is not an error */
        return 0;
    }
    return at.type == cudaMemoryTypeDevice || at.type == cudaMemoryTypeManaged;
}

static void ctx_free(somp_ctx *c) {
    if (c->st) cudaStreamSynchronize(c->st);
    if (c->blas) cublasDestroy(c->blas);
    if (c->solver) cusolverDnDestroy(c->solver);
    cudaFree(c->blas_ws);
    cudaFree(c->solver_ws);
    cudaFree(c->solver_info);
    if (c->h_need) cudaFreeHost(c->h_need);
    cudaFree(c->b.block);
    cudaFree(c->dict_own);
    cudaFree(c->atom_ok);
    cudaFree(c->dbad);
    if (c->hcnt) cudaFreeHost(c->hcnt);
    if (c->hbad) cudaFreeHost(c->hbad);
    if (c->st) cudaStreamDestroy(c->st);
    free(c->h_C);
    free(c->h_evr);
    free(c->h_hh);
    free(c->h_support);
    free(c->h_k);
    cudaGetLastError(); /* teardown errors have no one to report to */
    memset(c, 0, sizeof *c);
}

static unsigned grid_for(size_t n, unsigned block) {
    size_t g = (n + block - 1) / block;
    return (unsigned)(g > 65535u * 16u ? 65535u * 16u : (g ? g : 1)); /* grid-stride loops */
}

/* Stream, cuBLAS, the dictionary on the device (checked finite, zero atoms flagged). */
static int ctx_init(somp_ctx *c, const float *Dict, hp_err *e) {
    CK(cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking));
    CB(cublasCreate(&c->blas));
    CB(cublasSetStream(c->blas, c->st));
    /* Plain fp32 products: TF32 (~3e-4 relative) would make near-ties far more common. */
    CB(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    CK(cudaMalloc(&c->blas_ws, SOMP_BLAS_WS));
    CB(cublasSetWorkspace(c->blas, c->blas_ws, SOMP_BLAS_WS));
    if (c->qr == HP_SOMP_QR_HOUSEHOLDER) {
        /* workspace for the largest calls: ormqr with kmax reflectors on one D-vector, geqrf of
         * one D-column */
        int l1 = 0, l2 = 0, l3 = 0;
        CS(cusolverDnCreate(&c->solver));
        CS(cusolverDnSetStream(c->solver, c->st));
        CS(cusolverDnDgeqrf_bufferSize(c->solver, c->D, 1, NULL, c->D, &l1));
        CS(cusolverDnDormqr_bufferSize(c->solver, CUBLAS_SIDE_LEFT, CUBLAS_OP_T, c->D, 1, c->kmax,
                                       NULL, c->D, NULL, NULL, c->D, &l2));
        CS(cusolverDnDormqr_bufferSize(c->solver, CUBLAS_SIDE_LEFT, CUBLAS_OP_N, c->D, 1, c->kmax,
                                       NULL, c->D, NULL, NULL, c->D, &l3));
        c->solver_lwork = l1 > l2 ? l1 : l2;
        if (c->solver_lwork < l3) c->solver_lwork = l3;
        if (c->solver_lwork < 1) c->solver_lwork = 1;
        CK(cudaMalloc((void **)&c->solver_ws, (size_t)c->solver_lwork * sizeof(double)));
        CK(cudaMalloc((void **)&c->solver_info, sizeof(int)));
    }
    CK(cudaMallocHost((void **)&c->hcnt, 3 * sizeof(int)));
    CK(cudaMallocHost((void **)&c->hbad, sizeof(unsigned long long)));
    size_t vd = (size_t)c->V * c->D;
    if (is_device_pointer(Dict)) {
        c->dict = Dict;
    } else {
        cudaError_t rc = cudaMalloc((void **)&c->dict_own, vd * sizeof(float));
        if (rc != cudaSuccess) {
            cudaGetLastError();
            return hp_errf(e, "somp (cuda): out of device memory for the %d×%d dictionary (%.1f MiB)",
                           c->V, c->D, vd * 4.0 / MIB);
        }
        CK(cudaMemcpyAsync(c->dict_own, Dict, vd * sizeof(float), cudaMemcpyHostToDevice, c->st));
        c->dict = c->dict_own;
    }
    CK(cudaMalloc((void **)&c->atom_ok, (size_t)c->V));
    CK(cudaMalloc((void **)&c->dbad, sizeof(unsigned long long)));
    CK(cudaMemsetAsync(c->dbad, 0xff, sizeof(unsigned long long), c->st));
    LAUNCH(find_nonfinite<<<grid_for(vd, NB), NB, 0, c->st>>>(c->dict, vd, c->dbad));
    LAUNCH(atom_nonzero<<<c->V, NB, 0, c->st>>>(c->dict, c->D, c->atom_ok));
    CK(cudaMemcpyAsync(c->hbad, c->dbad, sizeof(unsigned long long), cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));
    if (*c->hbad != ~0ull) {
        size_t i = (size_t)*c->hbad;
        float x;
        CK(cudaMemcpy(&x, c->dict + i, sizeof x, cudaMemcpyDeviceToHost));
        return hp_errf(e, "somp: dict[%zu][%zu] is not finite (%g)", i / c->D, i % c->D, x);
    }
    return 0;
}

/* Sizes the group from the free device memory and allocates its buffers (halving on a failed
 * allocation, since free memory is only a snapshot). */
static int ctx_alloc_group(somp_ctx *c, int nheads, int max_group, hp_err *e) {
    size_t N = c->N, D = c->D, V = c->V, K = c->kmax;
    int hh = c->qr == HP_SOMP_QR_HOUSEHOLDER;
    size_t per_head = layout(NULL, NULL, 2, N, D, V, K, hh) - layout(NULL, NULL, 1, N, D, V, K, hh);
    size_t fr = 0, tot = 0;
    CK(cudaMemGetInfo(&fr, &tot));
    size_t avail = fr > SOMP_RESERVE_BYTES ? fr - SOMP_RESERVE_BYTES : 0;
    size_t G = avail / per_head;
    if (G > (size_t)nheads) G = nheads;
    if (max_group > 0 && G > (size_t)max_group) G = max_group;
    if (G * N > INT_MAX) G = INT_MAX / N; /* cuBLAS dimensions are int */
    if (G < 1)
        return hp_errf(e, "somp (cuda): out of device memory: one head needs %.1f MiB (V×N = %d×%d "
                       "fp32 correlations, N×D = %d×%d residual) but %.1f MiB of %.1f MiB are free "
                       "(%.0f MiB kept in reserve)",
                       per_head / MIB, c->V, c->N, c->N, c->D, fr / MIB, tot / MIB,
                       SOMP_RESERVE_BYTES / MIB);
    for (;;) {
        size_t bytes = layout(NULL, NULL, G, N, D, V, K, hh);
        cudaError_t rc = cudaMalloc(&c->b.block, bytes);
        if (rc == cudaSuccess) {
            c->b.block_bytes = bytes;
            layout(&c->b, (char *)c->b.block, G, N, D, V, K, hh);
            c->G = (int)G;
            break;
        }
        cudaGetLastError();
        c->b.block = NULL;
        if (G == 1)
            return hp_errf(e, "somp (cuda): out of device memory allocating %.1f MiB for one head (%s)",
                           bytes / MIB, cudaGetErrorString(rc));
        G /= 2;
    }
    c->h_C = (double *)malloc(G * N * K * sizeof(double));
    c->h_evr = (double *)malloc(G * K * sizeof(double));
    c->h_hh = (double *)malloc(G * sizeof(double));
    c->h_support = (int32_t *)malloc(G * K * sizeof(int32_t));
    c->h_k = (int *)malloc(G * sizeof(int));
    if (hh) CK(cudaMallocHost((void **)&c->h_need, G));
    if (!c->h_C || !c->h_evr || !c->h_hh || !c->h_support || !c->h_k)
        return hp_errf(e, "somp (cuda): out of host memory for the results of %zu heads", G);
    return 0;
}

/* Waits for the stream and reads the counters. */
static int read_counters(somp_ctx *c, hp_err *e) {
    CK(cudaMemcpyAsync(c->hcnt, c->b.cnt, 3 * sizeof(int), cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));
    return 0;
}

/* P = Dict·R^T for the group, layout [V][G][N]: in column-major terms the (G·N)×V matrix
 * R_stack·Dict^T, one SGEMM per slice of atoms small enough for int indexing. */
static int initial_correlations(somp_ctx *c, int G, hp_err *e) {
    const float one = 1.0f, zero = 0.0f;
    int M = G * c->N;
    int vc = (int)((size_t)INT_MAX / (size_t)M);
    if (vc < 1) vc = 1;
    for (int j0 = 0; j0 < c->V; j0 += vc) {
        int nv = c->V - j0 < vc ? c->V - j0 : vc;
        CB(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, M, nv, c->D, &one, c->b.R, c->D,
                       c->dict + (size_t)j0 * c->D, c->D, &zero, c->b.P + (size_t)j0 * M, M));
    }
    return 0;
}

static int launch_correlations(somp_ctx *c, int G, int update, hp_err *e) {
    const int warps = 8;
    size_t rows = (size_t)c->V * G;
    unsigned blocks = (unsigned)((rows + warps - 1) / warps);
    if (c->N % 4 == 0)
        LAUNCH(correlations_update<true><<<blocks, warps * 32, 0, c->st>>>(
            c->b.P, c->b.DQ, c->b.cf, c->b.state, c->b.active, c->b.score, c->V, G, c->N, update));
    else
        LAUNCH(correlations_update<false><<<blocks, warps * 32, 0, c->st>>>(
            c->b.P, c->b.DQ, c->b.cf, c->b.state, c->b.active, c->b.score, c->V, G, c->N, update));
    return 0;
}

/* householder_cusolver, step t: for every head that needs an atom, column t of its reflector
 * matrix becomes Q^T a with the new reflector factored out of rows t.., and qv = q_t. */
static int householder_extend(somp_ctx *c, int G, int t, hp_err *e) {
    somp_bufs *b = &c->b;
    int D = c->D, K = c->kmax, lw = c->solver_lwork;
    CK(cudaMemcpyAsync(c->h_need, b->need, (size_t)G, cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));
    LAUNCH(unit_vectors<<<dim3((unsigned)((D + NB - 1) / NB), (unsigned)G), NB, 0, c->st>>>(b->qv, D, t));
    for (int g = 0; g < G; g++) {
        if (!c->h_need[g]) continue;
        double *hh = b->HH + (size_t)g * K * D, *col = hh + (size_t)t * D, *tau = b->tau + (size_t)g * K;
        CK(cudaMemcpyAsync(col, b->a + (size_t)g * D, (size_t)D * sizeof(double),
                           cudaMemcpyDeviceToDevice, c->st));
        if (t > 0)
            CS(cusolverDnDormqr(c->solver, CUBLAS_SIDE_LEFT, CUBLAS_OP_T, D, 1, t, hh, D, tau, col, D,
                                c->solver_ws, lw, c->solver_info));
        CS(cusolverDnDgeqrf(c->solver, D - t, 1, col + t, D, tau + t, c->solver_ws, lw, c->solver_info));
        CS(cusolverDnDormqr(c->solver, CUBLAS_SIDE_LEFT, CUBLAS_OP_N, D, 1, t + 1, hh, D, tau,
                            b->qv + (size_t)g * D, D, c->solver_ws, lw, c->solver_info));
    }
    return 0;
}

/* Picks step t's atom for every active head: select, orthogonalise, accept or reject, and
 * again for the heads whose atom was dependent. *accepted = heads that gained an atom. */
static int choose_atoms(somp_ctx *c, int G, int t, int *accepted, hp_err *e) {
    somp_bufs *b = &c->b;
    int D = c->D, K = c->kmax;
    dim3 gd((unsigned)((D + NB - 1) / NB), (unsigned)G);
    const double one = 1.0, zero = 0.0, minus = -1.0;
    LAUNCH(begin_step<<<(G + NB - 1) / NB, NB, 0, c->st>>>(b->active, b->need, G, b->cnt));
    *accepted = 0;
    for (;;) {
        LAUNCH(select_atom<<<G, NB, 0, c->st>>>(b->score, b->state, b->need, c->V, b->sel));
        LAUNCH(gather_atom<<<gd, NB, 0, c->st>>>(c->dict, b->sel, b->need, D, b->a, b->v));
        if (c->qr == HP_SOMP_QR_HOUSEHOLDER) {
            if (householder_extend(c, G, t, e)) return -1;
            LAUNCH(hh_finalize_atom<<<G, NB, 0, c->st>>>(b->a, b->HH, b->qv, b->sel, t, D, c->V, K,
                                                         b->need, b->active, b->state, b->Q, b->qf,
                                                         b->Rq, b->support, b->cnt));
            if (read_counters(c, e)) return -1;
            *accepted = c->hcnt[CNT_ACCEPTED];
            if (c->hcnt[CNT_PENDING] == 0) return 0;
            CK(cudaMemsetAsync(b->cnt + CNT_PENDING, 0, sizeof(int), c->st));
            continue;
        }
        if (t > 0) {
            /* Q_g is the column-major D×t matrix at Q + g·K·D (ld D). */
            CB(cublasDgemvStridedBatched(c->blas, CUBLAS_OP_T, D, t, &one, b->Q, D,
                                         (long long)K * D, b->a, 1, D, &zero, b->r1, 1, K, G));
            CB(cublasDgemvStridedBatched(c->blas, CUBLAS_OP_N, D, t, &minus, b->Q, D,
                                         (long long)K * D, b->r1, 1, K, &one, b->v, 1, D, G));
            CB(cublasDgemvStridedBatched(c->blas, CUBLAS_OP_T, D, t, &one, b->Q, D,
                                         (long long)K * D, b->v, 1, D, &zero, b->r2, 1, K, G));
            CB(cublasDgemvStridedBatched(c->blas, CUBLAS_OP_N, D, t, &minus, b->Q, D,
                                         (long long)K * D, b->r2, 1, K, &one, b->v, 1, D, G));
        }
        LAUNCH(finalize_atom<<<G, NB, 0, c->st>>>(b->a, b->v, b->r1, b->r2, b->sel, t, D, c->V, K,
                                                  b->need, b->active, b->state, b->Q, b->qf, b->Rq,
                                                  b->support, b->cnt));
        if (read_counters(c, e)) return -1;
        *accepted = c->hcnt[CNT_ACCEPTED];
        if (c->hcnt[CNT_PENDING] == 0) return 0;
        /* Some heads drew a dependent atom: reset the pending count and select again. */
        CK(cudaMemsetAsync(b->cnt + CNT_PENDING, 0, sizeof(int), c->st));
    }
}

/* SOMP on heads [h0, h0+G) of H, results into out[h0..]. */
static int run_group(somp_ctx *c, const float *H, int h0, int G, hp_somp_result *out, hp_err *e) {
    somp_bufs *b = &c->b;
    size_t N = c->N, D = c->D, K = c->kmax, nd = N * D;
    /* R = the group's signals (the caller's memory is never written). */
    CK(cudaMemcpyAsync(b->R, H + (size_t)h0 * nd, (size_t)G * nd * sizeof(float),
                       cudaMemcpyDefault, c->st));
    CK(cudaMemsetAsync(b->bad, 0xff, sizeof(unsigned long long), c->st));
    LAUNCH(find_nonfinite<<<grid_for((size_t)G * nd, NB), NB, 0, c->st>>>(b->R, (size_t)G * nd, b->bad));
    CK(cudaMemcpyAsync(c->hbad, b->bad, sizeof(unsigned long long), cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));
    if (*c->hbad != ~0ull) {
        size_t i = (size_t)*c->hbad;
        float x;
        CK(cudaMemcpy(&x, b->R + i, sizeof x, cudaMemcpyDeviceToHost));
        return hp_errf(e, "somp: signals[%zu][%zu] is not finite (%g)", (size_t)h0 * N + i / D,
                       i % D, x);
    }
    if (c->center)
        LAUNCH(center_columns<<<dim3((unsigned)((D + NB - 1) / NB), (unsigned)G), NB, 0, c->st>>>(
            b->R, c->N, c->D));
    LAUNCH(row_norms<<<(unsigned)(G * N), NB, 0, c->st>>>(b->R, c->D, b->rown));
    LAUNCH(init_heads<<<G, NB, 0, c->st>>>(b->rown, c->N, c->V, c->kmax, c->atom_ok, b->hh,
                                           b->active, b->kcur, b->state, b->evr, b->support));
    /* Unwritten coefficients would show as NaN (all-ones bytes). Q and qf start at zero: the
     * batched products also run over heads that have stopped, whose rows were never written. */
    CK(cudaMemsetAsync(b->C, 0xff, (size_t)G * N * K * sizeof(double), c->st));
    CK(cudaMemsetAsync(b->Q, 0, (size_t)G * K * D * sizeof(double), c->st));
    CK(cudaMemsetAsync(b->qf, 0, (size_t)G * D * sizeof(float), c->st));
    if (initial_correlations(c, G, e) || launch_correlations(c, G, 0, e)) return -1;

    for (int t = 0; t < c->kmax; t++) {
        int accepted = 0;
        if (choose_atoms(c, G, t, &accepted, e)) return -1;
        if (!accepted) break; /* every head has stopped */
        LAUNCH(project_rows<<<(unsigned)(G * N), NB, 0, c->st>>>(b->R, b->Q, b->active, t, c->N,
                                                                 c->D, c->kmax, b->C, b->cf, b->rown));
        LAUNCH(step_end<<<G, NB, 0, c->st>>>(b->rown, b->hh, t, c->N, c->kmax, b->active, b->kcur,
                                             b->evr));
        if (t + 1 < c->kmax) {
            const float one = 1.0f, zero = 0.0f;
            /* DQ[g][j] = Dict[j]·q_g: column-major V×G = Dict^T(op) · qf (D×G). */
            CB(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, c->V, G, c->D, &one, c->dict, c->D,
                           b->qf, c->D, &zero, b->DQ, c->V));
            if (launch_correlations(c, G, 1, e)) return -1;
        }
    }
    if (c->qr == HP_SOMP_QR_HOUSEHOLDER) {
        /* per head, R w_i = c_i for every sample: Rq row-major upper is column-major lower
         * (ld kmax), so op = T; C row-major [N][kmax] is column-major kmax×N */
        const double one = 1.0;
        CK(cudaMemcpyAsync(c->h_k, b->kcur, (size_t)G * sizeof(int), cudaMemcpyDeviceToHost, c->st));
        CK(cudaStreamSynchronize(c->st));
        for (int g = 0; g < G; g++)
            if (c->h_k[g] > 0)
                CB(cublasDtrsm(c->blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                               CUBLAS_DIAG_NON_UNIT, c->h_k[g], c->N, &one, b->Rq + (size_t)g * K * K,
                               c->kmax, b->C + (size_t)g * N * K, c->kmax));
    } else {
        LAUNCH(solve_coefficients<<<(unsigned)((G * N + 127) / 128), 128, 0, c->st>>>(
            b->C, b->Rq, b->kcur, c->N, c->kmax, G));
    }
    CK(cudaMemcpyAsync(c->h_C, b->C, (size_t)G * N * K * sizeof(double), cudaMemcpyDeviceToHost, c->st));
    CK(cudaMemcpyAsync(c->h_evr, b->evr, (size_t)G * K * sizeof(double), cudaMemcpyDeviceToHost, c->st));
    CK(cudaMemcpyAsync(c->h_support, b->support, (size_t)G * K * sizeof(int32_t),
                       cudaMemcpyDeviceToHost, c->st));
    CK(cudaMemcpyAsync(c->h_k, b->kcur, (size_t)G * sizeof(int), cudaMemcpyDeviceToHost, c->st));
    CK(cudaMemcpyAsync(c->h_hh, b->hh, (size_t)G * sizeof(double), cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));

    for (int g = 0; g < G; g++) {
        hp_somp_result *r = &out[h0 + g];
        int k = c->h_k[g];
        r->k = k;
        r->h_norm2 = c->h_hh[g];
        r->support = (int32_t *)malloc(K * sizeof(int32_t));
        r->evr = (double *)malloc(K * sizeof(double));
        r->coef = (double *)malloc((k ? N * (size_t)k : 1) * sizeof(double));
        if (!r->support || !r->evr || !r->coef)
            return hp_errf(e, "somp (cuda): out of host memory for the results of head %d", h0 + g);
        memcpy(r->support, c->h_support + (size_t)g * K, (size_t)k * sizeof(int32_t));
        memcpy(r->evr, c->h_evr + (size_t)g * K, (size_t)k * sizeof(double));
        for (size_t i = 0; i < N; i++)
            memcpy(r->coef + i * k, c->h_C + ((size_t)g * N + i) * K, (size_t)k * sizeof(double));
    }
    return 0;
}

const char *hp_somp_cuda_qr_name(hp_somp_qr v) {
    return v == HP_SOMP_QR_HOUSEHOLDER ? "householder_cusolver" : v == HP_SOMP_QR_CGS2 ? "cgs2_gemv" : "unknown";
}

int hp_somp_cuda_batch_grouped(const float *H, int nheads, int N, int D, const float *Dict, int V,
                               const hp_somp_opts *o, int max_group, hp_somp_result *out,
                               hp_err *e) {
    return hp_somp_cuda_batch_qr(H, nheads, N, D, Dict, V, o, max_group, HP_SOMP_QR_HOUSEHOLDER, out, e);
}

int hp_somp_cuda_batch_qr(const float *H, int nheads, int N, int D, const float *Dict, int V,
                          const hp_somp_opts *o, int max_group, hp_somp_qr qr, hp_somp_result *out,
                          hp_err *e) {
    if (nheads <= 0) return hp_errf(e, "somp: no heads (nheads=%d)", nheads);
    memset(out, 0, (size_t)nheads * sizeof *out);
    if (!o || o->k <= 0) return hp_errf(e, "somp: k must be positive (got %d)", o ? o->k : 0);
    if (N <= 0 || D <= 0 || V <= 0)
        return hp_errf(e, "somp: empty problem (N=%d, D=%d, V=%d)", N, D, V);
    size_t t1, t2;
    if (!hp_mul_ok((size_t)N, (size_t)D, &t1) || !hp_mul_ok(t1, (size_t)nheads, &t2) ||
        !hp_mul_ok((size_t)V, (size_t)D, &t1) || !hp_mul_ok((size_t)V, (size_t)N, &t2))
        return hp_errf(e, "somp: sizes overflow (nheads=%d, N=%d, D=%d, V=%d)", nheads, N, D, V);

    if (qr != HP_SOMP_QR_HOUSEHOLDER && qr != HP_SOMP_QR_CGS2)
        return hp_errf(e, "somp (cuda): unknown QR variant %d", (int)qr);

    HP_NVTX_PUSH("somp:cuda");
    somp_ctx c;
    memset(&c, 0, sizeof c);
    c.N = N;
    c.D = D;
    c.V = V;
    c.center = o->center;
    c.qr = qr;
    c.kmax = o->k; /* no more than rank(Dict) <= min(D, V) atoms can be independent */
    if (c.kmax > D) c.kmax = D;
    if (c.kmax > V) c.kmax = V;
    int rc = ctx_init(&c, Dict, e);
    if (!rc) rc = ctx_alloc_group(&c, nheads, max_group, e);
    for (int h0 = 0; !rc && h0 < nheads; h0 += c.G) {
        int G = nheads - h0 < c.G ? nheads - h0 : c.G;
        HP_NVTX_PUSH("somp:group");
        rc = run_group(&c, H, h0, G, out, e);
        HP_NVTX_POP();
    }
    ctx_free(&c);
    if (rc)
        for (int h = 0; h < nheads; h++) hp_somp_result_free(&out[h]);
    HP_NVTX_POP();
    return rc;
}

int hp_somp_cuda_batch(const float *H, int nheads, int N, int D, const float *Dict, int V,
                       const hp_somp_opts *o, hp_somp_result *out, hp_err *e) {
    return hp_somp_cuda_batch_grouped(H, nheads, N, D, Dict, V, o, 0, out, e);
}
