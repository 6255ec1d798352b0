/* norm.c: RMSNorm (CPU), accumulated in double so the reference is tighter than the GPU op. */
#include "ops_cpu.h"

#include <math.h>

void hp_cpu_rmsnorm(float *out, const float *x, const float *w, int T, int D, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)T * D > 65536)
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * D;
        float *o = out + (size_t)t * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float r = (float)(1.0 / sqrt(ss / D + (double)eps));
        for (int i = 0; i < D; i++) o[i] = (xr[i] * r) * w[i];
    }
}
