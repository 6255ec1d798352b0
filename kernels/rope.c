/* rope.c: rotary position embedding, rotate-half layout as HF Llama/Mistral apply it (GGUF's
 * interleaved Q/K rows are permuted back to this layout at load). The per-pair inverse
 * frequencies come precomputed (hp_rope_inv_freq: float32 as HF rounds them, rope scaling
 * included); the angle is float(pos) * inv_freq in float, as HF forms it. */
#include "ops_cpu.h"

#include <math.h>

void hp_cpu_rope(float *x, const int32_t *pos, const float *inv_freq, int T, int nh, int Dh) {
    int half = Dh / 2;
#pragma omp parallel for schedule(static) if ((size_t)T * nh * Dh > 65536)
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv_freq[i];
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
