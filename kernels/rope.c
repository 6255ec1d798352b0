/* rope.c: rotary position embedding, rotate-half layout as HF Llama/Mistral apply it (GGUF's
 * interleaved Q/K rows are permuted back to this layout at load). Angles are formed in double
 * and rounded once, so the reference carries no extra float32 angle error. */
#include "ops_cpu.h"

#include <math.h>

void hp_cpu_rope(float *x, const int32_t *pos, int T, int nh, int Dh, float theta) {
    int half = Dh / 2;
#pragma omp parallel for schedule(static) if ((size_t)T * nh * Dh > 65536)
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            /* HF computes inv_freq in float32: round it the same way. */
            float inv = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)Dh));
            float ang = (float)pos[t] * inv;
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < nh; h++) {
                float *v = x + ((size_t)t * nh + h) * Dh;
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
}
