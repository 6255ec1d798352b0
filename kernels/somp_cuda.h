/* somp_cuda.h: plain-C declaration of the GPU SOMP (kernels/somp.cu), the twin of
 * hp_somp_cpu_batch (kernels/somp.h): nheads independent heads H[nheads][N][D] against one
 * V×D dictionary, all heads of a group advanced together on the device. Results have the
 * layout of the CPU version (hp_somp_result, freed with hp_somp_result_free); they agree with it
 * to float32 accuracy: the same supports up to near-ties of the selection score, EVR within
 * 1e-4 (in practice ~1e-6), coefficients to ~1e-5 relative for well-conditioned supports
 * (design and error budget in somp.cu's header comment). */
#ifndef HP_SOMP_CUDA_H
#define HP_SOMP_CUDA_H

#if defined(HP_HAVE_CUDA) || defined(__CUDACC__)

/* somp.h pulls these in; included first so that C++ sees them outside the extern "C" block. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "somp.h"

/* H and Dict may each be host memory (pageable or pinned) or device memory (cudaMalloc or
 * managed); device inputs are read in place and never modified. Runs on the current CUDA
 * device. Heads are processed in groups sized from cudaMemGetInfo; a device too small for one
 * head fails with a message giving the bytes one head needs. On error every out[h] is freed and
 * the message starts with "somp (cuda):". */
int hp_somp_cuda_batch(const float *H, int nheads, int N, int D, const float *Dict, int V,
                       const hp_somp_opts *o, hp_somp_result *out, hp_err *e);

/* The same with at most max_group heads per group (0: as many as fit), so that tests and
 * benchmarks can exercise the grouping on small problems. */
int hp_somp_cuda_batch_grouped(const float *H, int nheads, int N, int D, const float *Dict, int V,
                               const hp_somp_opts *o, int max_group, hp_somp_result *out,
                               hp_err *e);

/* How the support's QR factorisation grows when an atom joins it (somp.cu's header). */
typedef enum hp_somp_qr {
    HP_SOMP_QR_HOUSEHOLDER = 0, /* "householder_cusolver": cuSOLVER ormqr/geqrf per head, cuBLAS
                                   trsm for W; the default */
    HP_SOMP_QR_CGS2 = 1,        /* "cgs2_gemv": Gram-Schmidt twice, batched DGEMVs over heads */
} hp_somp_qr;

const char *hp_somp_cuda_qr_name(hp_somp_qr v);

/* hp_somp_cuda_batch_grouped with the QR variant chosen (tests and bench/ run both). */
int hp_somp_cuda_batch_qr(const float *H, int nheads, int N, int D, const float *Dict, int V,
                          const hp_somp_opts *o, int max_group, hp_somp_qr qr, hp_somp_result *out,
                          hp_err *e);

#ifdef __cplusplus
}
#endif

#endif /* HP_HAVE_CUDA || __CUDACC__ */
#endif
