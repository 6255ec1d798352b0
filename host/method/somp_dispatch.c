/* somp_dispatch.c: one entry point for batched SOMP that picks the implementation from the
 * backend a model runs on: the GPU version for "cuda" (when compiled in), the CPU reference
 * otherwise. Callers stay free of #ifdefs. */
#include "somp.h"

#include "nvtx.h"

#include <string.h>

#ifdef HP_HAVE_CUDA
#include "somp_cuda.h"
#endif

int hp_somp_batch(const char *backend_name, const float *H, int nheads, int N, int D,
                  const float *Dict, int V, const hp_somp_opts *o, hp_somp_result *out, hp_err *e) {
    int rc;
    HP_NVTX_PUSH("somp");
#ifdef HP_HAVE_CUDA
    if (backend_name && !strcmp(backend_name, "cuda"))
        rc = hp_somp_cuda_batch(H, nheads, N, D, Dict, V, o, out, e);
    else
        rc = hp_somp_cpu_batch(H, nheads, N, D, Dict, V, o, out, e);
#else
    (void)backend_name; /* a "cuda" model cannot exist without CUDA in the build */
    rc = hp_somp_cpu_batch(H, nheads, N, D, Dict, V, o, out, e);
#endif
    HP_NVTX_POP();
    return rc;
}
