/* gelu.c: the activations of the CLIP tower and the LLaVA projector (CPU), in place.
 * gelu: the exact erf form, as torch.nn.functional.gelu (transformers' "gelu"), used by the
 * projector. quick_gelu: x * sigmoid(1.702 x), OpenAI CLIP's approximation (transformers'
 * "quick_gelu"), used inside the CLIP MLP; it is not interchangeable with gelu (differences
 * ~1e-2), so each model names its own. */
#include "ops_cpu.h"

#include <math.h>

void hp_cpu_gelu(float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * M_SQRT1_2)));
}

void hp_cpu_quick_gelu(float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}
