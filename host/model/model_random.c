/* model_random.c: a decoder with random weights built from a config alone, with no file I/O,
 * laid out exactly as hp_model_load lays out a checkpoint (one backend allocation, the tensor
 * table's order, named pointers into it). For benchmarks at real shapes (bench/bench_cuda.c
 * builds Mistral-7B this way) and for tests that need a model of a given shape.
 *
 * Values: matrices uniform with standard deviation 1/sqrt(fan-in), so activations keep unit
 * scale through the layers; norm weights 1 ± 0.05. Element i of the weight block is a hash of
 * (seed, i): the same model for the same seed on any backend and any thread count, generated
 * in parallel chunks that are uploaded as they are made. */
#include "model.h"

#include <math.h>
#include <stdlib.h>

#define CHUNK ((size_t)1 << 24) /* floats generated and uploaded at a time (64 MiB) */

static uint64_t mix(uint64_t z) { /* splitmix64 finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void hp_fill_uniform(float *dst, size_t n, uint64_t seed, uint64_t first, float base, float amp) {
    uint64_t s = mix(seed ^ 0x5eed5eed5eed5eedull);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint64_t z = mix(s + (first + i) * 0x9e3779b97f4a7c15ull);
        float u = (float)((double)(z >> 40) * (1.0 / 8388608.0) - 1.0); /* 24 bits */
        dst[i] = base + amp * u;
    }
}

hp_model *hp_model_random(const hp_config *cfg, hp_backend *be, uint64_t seed, hp_err *e) {
    const hp_config *c = cfg;
    if (!be) {
        hp_errf(e, "random model: no backend");
        return NULL;
    }
    if (c->D <= 0 || c->L <= 0 || c->H <= 0 || c->KV <= 0 || c->Dh <= 0 || c->F <= 0 || c->V <= 0 ||
        c->H % c->KV || c->Dh % 2 || c->rms_eps <= 0) {
        hp_errf(e, "random model: invalid config (D=%d L=%d H=%d KV=%d Dh=%d F=%d V=%d eps=%g)", c->D,
                c->L, c->H, c->KV, c->Dh, c->F, c->V, (double)c->rms_eps);
        return NULL;
    }
    hp_model *m = calloc(1, sizeof *m);
    float *buf = NULL;
    if (!m) goto oom;
    m->path = strdup("random");
    m->cfg = *c;
    m->be = be;
    m->chat = HP_CHAT_NONE;
    m->layers = calloc((size_t)c->L, sizeof *m->layers);
    m->alpha = malloc(sizeof(float) * (size_t)c->L * c->H);
    buf = malloc(CHUNK * sizeof(float));
    if (!m->path || !m->layers || !m->alpha || !buf) goto oom;
    hp_model_clear_edits(m);

    m->n_params = 0;
    for (int r = 0; r < HP_T_COUNT; r++) {
        if (!hp_role_needed(c, r)) continue;
        int64_t shape[2];
        int nd = hp_tensor_shape(c, r, shape);
        m->n_params += (uint64_t)shape[0] * (nd == 2 ? (uint64_t)shape[1] : 1) *
                       (hp_tensor_table[r].per_layer ? (uint64_t)c->L : 1);
        m->file_dtype[r] = HP_F32;
    }
    m->wblock_n = m->n_params;
    m->wblock = be->alloc(be, m->wblock_n, HP_MEM_WEIGHT, e);
    if (!m->wblock) goto fail;

    size_t off = 0;
    for (int r = 0; r < HP_T_COUNT; r++) {
        if (!hp_role_needed(c, r)) continue;
        int64_t shape[2];
        int nd = hp_tensor_shape(c, r, shape);
        size_t n = (size_t)shape[0] * (nd == 2 ? (size_t)shape[1] : 1);
        float base = hp_role_is_norm(r) ? 1.0f : 0.0f; /* norm weights near 1, biases near 0 */
        float amp = nd == 2 ? (float)sqrt(3.0 / (double)shape[1]) : 0.05f; /* std 1/sqrt(K) */
        for (int l = 0; l < (hp_tensor_table[r].per_layer ? c->L : 1); l++) {
            void *dst = be->offset(be, m->wblock, off, HP_MEM_WEIGHT);
            *hp_model_slot(m, r, l) = dst;
            for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
                size_t k = n - i0 < CHUNK ? n - i0 : CHUNK;
                hp_fill_uniform(buf, k, seed, off + i0, base, amp);
                if (be->upload(be, be->offset(be, dst, i0, HP_MEM_WEIGHT), buf, k, HP_MEM_WEIGHT, e))
                    goto fail;
            }
            off += n;
        }
    }
    if (c->tie_embeddings) m->lm_head = m->embed;
    if (hp_model_init_rope(m, e) || be->sync(be, e)) goto fail;
    free(buf);
    return m;
oom:
    hp_errf(e, "random model: out of host memory");
fail:
    free(buf);
    hp_model_free(m);
    return NULL;
}
