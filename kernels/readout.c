/* readout.c: the paper's head edit (scale a head's attention output by alpha) and the per-head
 * readout: the weighted sum over a sequence's tokens of each head's contribution to the residual
 * stream. Contributions are linear in z, so the token sum is taken first (B×H×Dh) and projected
 * through the head's W_O slice once, never forming a T×D tensor per head (CPU). */
#include "ops_cpu.h"

#include <stdlib.h>
#include <string.h>

void hp_cpu_head_scale(float *z, const float *alpha, int T, int H, int Dh) {
    for (int h = 0; h < H; h++) {
        if (alpha[h] == 1.0f) continue;
        for (int t = 0; t < T; t++) {
            float *v = z + ((size_t)t * H + h) * Dh;
            for (int i = 0; i < Dh; i++) v[i] *= alpha[h];
        }
    }
}

int hp_cpu_head_readout(float *out, const float *z, const float *w, const int32_t *seq,
                         const float *Wo, int T, int B, int H, int Dh, int D) {
    int HD = H * Dh;
    double *zs = calloc((size_t)B * HD, sizeof(double));
    if (!zs) return -1;
    for (int t = 0; t < T; t++) {
        if (w[t] == 0.0f) continue;
        double *dst = zs + (size_t)seq[t] * HD;
        const float *src = z + (size_t)t * HD;
        for (int i = 0; i < HD; i++) dst[i] += (double)w[t] * src[i];
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const double *zb = zs + (size_t)b * HD + (size_t)h * Dh;
            float *o = out + ((size_t)b * H + h) * D;
            for (int d = 0; d < D; d++) {
                const float *wr = Wo + (size_t)d * HD + (size_t)h * Dh;
                double s = 0;
                for (int i = 0; i < Dh; i++) s += zb[i] * wr[i];
                o[d] += (float)s;
            }
        }
    }
    free(zs);
    return 0;
}
