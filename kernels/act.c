/* act.c: the gated MLP activation act(gate)·up and residual adds (CPU). */
#include "ops_cpu.h"

#include <math.h>

/* The formulas of torch's float32 kernels behind transformers' ACT2FN names: silu g·σ(g);
 * "gelu" the exact erf form; "gelu_pytorch_tanh" the tanh approximation
 * 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))); relu max(g, 0). */
static inline float glu_act(float g, int act) {
    switch (act) {
    case HP_GLU_GELU: return 0.5f * g * (1.0f + erff(g * (float)M_SQRT1_2));
    case HP_GLU_GELU_TANH: {
        const float k = 0.7978845608028654f; /* sqrt(2/pi) */
        return 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g)));
    }
    case HP_GLU_RELU: return g > 0.0f ? g : 0.0f;
    default: return g / (1.0f + expf(-g));
    }
}

void hp_cpu_glu(float *out, const float *gate, const float *up, size_t n, int act) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = glu_act(gate[i], act) * up[i];
}

void hp_cpu_add(float *x, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}
