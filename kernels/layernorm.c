/* layernorm.c: LayerNorm with weight and bias (CPU), as torch.nn.LayerNorm: biased variance,
 * eps inside the square root. Mean and variance are accumulated in double so the reference is
 * tighter than a float32 GPU op will be. */
#include "ops_cpu.h"

#include <math.h>

void hp_cpu_layernorm(float *out, const float *x, const float *w, const float *b, int T, int D,
                      float eps) {
#pragma omp parallel for schedule(static) if ((size_t)T * D > 65536)
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * D;
        float *o = out + (size_t)t * D;
        double s = 0;
        for (int i = 0; i < D; i++) s += xr[i];
        double mean = s / D, ss = 0;
        /* Two passes: the one-pass E[x^2]-E[x]^2 cancels badly when |mean| >> std. */
        for (int i = 0; i < D; i++) ss += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        double r = 1.0 / sqrt(ss / D + (double)eps);
        for (int i = 0; i < D; i++) o[i] = (float)(((double)xr[i] - mean) * r) * w[i] + b[i];
    }
}
