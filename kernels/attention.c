/* attention.c: KV-cache writes and causal (optionally sliding-window) GQA attention over packed
 * tokens (CPU). One pass per (token, head): scores, max, exp-sum, weighted V, in float (SIMD dot
 * products) with a double-accumulated denominator. */
#include "ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hp_cpu_kv_store(float *kc, float *vc, const float *k, const float *v, const int32_t *seq,
                     const int32_t *pos, int T, int KVD, int Tcap) {
    for (int t = 0; t < T; t++) {
        size_t off = ((size_t)seq[t] * Tcap + pos[t]) * KVD;
        memcpy(kc + off, k + (size_t)t * KVD, sizeof(float) * KVD);
        memcpy(vc + off, v + (size_t)t * KVD, sizeof(float) * KVD);
    }
}

static float dot(const float *a, const float *b, int n) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void hp_cpu_attention(float *z, const float *q, const float *kc, const float *vc,
                      const int32_t *seq, const int32_t *pos, int T, int H, int KV, int Dh,
                      int Tcap, int window) {
    int group = H / KV, KVD = KV * Dh;
    float scale = 1.0f / sqrtf((float)Dh);
#pragma omp parallel if ((size_t)T * H * (pos[T - 1] + 1) > 4096)
    {
        float *sc = malloc(sizeof(float) * (size_t)Tcap);
        float *acc = malloc(sizeof(float) * (size_t)Dh);
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                const float *qv = q + ((size_t)t * H + h) * Dh;
                int g = h / group, p = pos[t];
                int lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
                const float *kb = kc + (size_t)seq[t] * Tcap * KVD + (size_t)g * Dh;
                const float *vb = vc + (size_t)seq[t] * Tcap * KVD + (size_t)g * Dh;
                float mx = -INFINITY;
                for (int j = lo; j <= p; j++) {
                    sc[j] = dot(qv, kb + (size_t)j * KVD, Dh) * scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                double den = 0;
                for (int i = 0; i < Dh; i++) acc[i] = 0;
                for (int j = lo; j <= p; j++) {
                    float w = expf(sc[j] - mx);
                    den += w;
                    const float *vv = vb + (size_t)j * KVD;
#pragma omp simd
                    for (int i = 0; i < Dh; i++) acc[i] += w * vv[i];
                }
                float *out = z + ((size_t)t * H + h) * Dh, inv = (float)(1.0 / den);
                for (int i = 0; i < Dh; i++) out[i] = acc[i] * inv;
            }
        }
        free(sc);
        free(acc);
    }
}
