/* somp.h: Simultaneous Orthogonal Matching Pursuit (PAPER.md §3), CPU reference.
 * H (N×D signals, one row per sample) is approximated on a shared support of atoms (rows of
 * the V×D dictionary). Selection: argmax_j Σ_i |<d_j, r_i>| over atoms not yet chosen (lowest
 * index on exact ties); refit: least squares on the whole support through an incremental QR of
 * the selected atoms (one new column a step, no re-solve from scratch). */
#ifndef HP_SOMP_H
#define HP_SOMP_H

#include "common.h"

typedef struct hp_somp_result {
    int k;            /* iterations run: <= requested; stops early when the residual vanishes or
                         every remaining atom is linearly dependent on the support */
    int32_t *support; /* k atom indices, in selection order */
    double *coef;     /* N×k coefficients W (row i = sample i, column t = support[t]) */
    double *evr;      /* k explained-variance ratios, evr[t] after step t+1 */
    double h_norm2;   /* ‖H‖²_F of the (centred, if asked) signals */
} hp_somp_result;

typedef struct hp_somp_opts {
    int k;          /* iterations */
    int center;     /* subtract the column mean of H first */
    const char *backend; /* hp_somp_batch only: "cuda" runs on the GPU (the model's backend
                            name, hp_backend.name); NULL or anything else: the CPU */
} hp_somp_opts;

int hp_somp_cpu(const float *H, int N, int D, const float *Dict, int V, const hp_somp_opts *o,
                hp_somp_result *out, hp_err *e);
/* The same for nheads independent heads H[nheads][N][D] against one dictionary, out[nheads].
 * Heads run in parallel (OpenMP), each with single-threaded BLAS; results equal those of
 * hp_somp_cpu per head (up to BLAS rounding across thread counts). On error every out[h] is
 * freed and the message names the head. */
int hp_somp_cpu_batch(const float *H, int nheads, int N, int D, const float *Dict, int V,
                      const hp_somp_opts *o, hp_somp_result *out, hp_err *e);
void hp_somp_result_free(hp_somp_result *r);

/* hp_somp_cpu_batch, or its GPU twin hp_somp_cuda_batch (kernels/somp_cuda.h) when
 * backend_name is "cuda" and the build has CUDA (host/method/somp_dispatch.c). The GPU results equal
 * the CPU's to float32 accuracy: same supports up to near-ties, EVR within 1e-4. */
int hp_somp_batch(const char *backend_name, const float *H, int nheads, int N, int D,
                  const float *Dict, int V, const hp_somp_opts *o, hp_somp_result *out, hp_err *e);

#endif
