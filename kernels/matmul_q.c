/* matmul_q.c: products with weights kept in their GGUF block type (ops_cpu_q.h). Small T (decode):
 * activations quantised to 16 bits per block of 32, then one integer dot product per weight block
 * (AVX2 madd of int16 pairs, run-time detected, compiled with target attributes so that the build does
 * not depend on -march; a scalar fallback that dequantises each block does the same sums). Large
 * T (prefill): tiles of W dequantised to float32 and multiplied by single-threaded sgemm. Both
 * split the rows of W into chunks that the threads take dynamically: the decode products on the
 * backend's own pool (pool_cpu.c: short jobs, brief spinning), the prefill tiles on OpenMP
 * (long jobs; sgemm stays single-threaded inside a parallel region). Block layouts as in
 * weights/quant.c. */
#include "ops_cpu_q.h"
#include "pool_cpu.h"
#include "ops_cpu.h"
#include "store.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

int hp_cpu_q_supported(hp_dtype dt) {
    switch (dt) {
    case HP_Q4_0:
    case HP_Q4_1:
    case HP_Q5_0:
    case HP_Q8_0:
    case HP_Q4_K:
    case HP_Q6_K: return 1;
    default: return 0;
    }
}

static int force_scalar;
int hp_cpu_q_force_scalar(int on) {
    int old = force_scalar;
    force_scalar = on;
    return old;
}

static int have_avx2(void) {
#ifdef HAVE_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("f16c");
    }
    return cached && !force_scalar;
#else
    return 0;
#endif
}

const char *hp_cpu_q_isa(void) { return have_avx2() ? "avx2" : "scalar"; }

void hp_cpu_quantize_qx(const float *x, hp_qxblk *b, int K) {
    for (int i = 0; i < K / 32; i++, x += 32, b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 32767.0f, id = d > 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int q = (int)lrintf(x[j] * id);
            b->q[j] = (int16_t)q;
            sum += q;
        }
        b->d = d;
        b->s = d * (float)sum;
    }
}

/* Scalar: each weight block dequantised (weights/quant.c), times the dequantised activations. */
static float dot_scalar(hp_dtype dt, const uint8_t *w, const hp_qxblk *xb, int K) {
    float tmp[256];
    int blk = hp_dtype_block(dt);
    size_t bb = hp_dtype_block_bytes(dt);
    float acc = 0;
    for (int i = 0; i < K / blk; i++, w += bb) {
        hp_dequant_f32(dt, w, tmp, (uint64_t)blk);
        for (int j = 0; j < blk; j += 32, xb++) {
            float s = 0;
            for (int l = 0; l < 32; l++) s += tmp[j + l] * (float)xb->q[l];
            acc += s * xb->d;
        }
    }
    return acc;
}

#ifdef HAVE_X86
#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
TGT static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
/* Σ w·x over 32 values as 8 int32 lanes: w the 32 weight bytes (unsigned when sgn == 0, signed
 * otherwise), x the block's 32 int16 activations. */
TGT static inline __m256i dot32(__m256i w, const int16_t *x, int sgn) {
    __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
    __m256i wl = sgn ? _mm256_cvtepi8_epi16(lo) : _mm256_cvtepu8_epi16(lo);
    __m256i wh = sgn ? _mm256_cvtepi8_epi16(hi) : _mm256_cvtepu8_epi16(hi);
    return _mm256_add_epi32(_mm256_madd_epi16(wl, _mm256_loadu_si256((const __m256i *)x)),
                            _mm256_madd_epi16(wh, _mm256_loadu_si256((const __m256i *)(x + 16))));
}
/* 16 bytes of nibbles -> 32 bytes: low nibbles first (values 0..15), high nibbles after. */
TGT static inline __m256i nibbles32(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m256i w = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(w, _mm256_set1_epi8(0x0F));
}
/* 32 bits -> 32 bytes, 0xFF where the bit is set (byte i <- bit i). */
TGT static inline __m256i bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                              0x0303030303030303LL);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), spread);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFELL)); /* all but bit i%8 */
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}
#define FMA_BLOCK(acc, scale, i32) \
    acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(i32), acc)

/* Q4_0: d·(q − 8): Σ d·dx·Σ(q·xq) − 8·d·s. */
TGT static float dot_q4_0(const uint8_t *w, const hp_qxblk *xb, int K) {
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int i = 0; i < K / 32; i++, w += 18, xb++) {
        float d = h2f(w);
        FMA_BLOCK(acc, d * xb->d, dot32(nibbles32(w + 2), xb->q, 0));
        corr += d * xb->s;
    }
    return hsum8(acc) - 8 * corr;
}
/* Q4_1: d·q + m. */
TGT static float dot_q4_1(const uint8_t *w, const hp_qxblk *xb, int K) {
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int i = 0; i < K / 32; i++, w += 20, xb++) {
        FMA_BLOCK(acc, h2f(w) * xb->d, dot32(nibbles32(w + 4), xb->q, 0));
        corr += h2f(w + 2) * xb->s;
    }
    return hsum8(acc) + corr;
}
/* Q5_0: d·(q − 16), q = nibble | fifth bit << 4. */
TGT static float dot_q5_0(const uint8_t *w, const hp_qxblk *xb, int K) {
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    for (int i = 0; i < K / 32; i++, w += 22, xb++) {
        float d = h2f(w);
        __m256i q = _mm256_or_si256(nibbles32(w + 6),
                                    _mm256_and_si256(bits32(w + 2), _mm256_set1_epi8(0x10)));
        FMA_BLOCK(acc, d * xb->d, dot32(q, xb->q, 0));
        corr += d * xb->s;
    }
    return hsum8(acc) - 16 * corr;
}
/* Q8_0: d·q. */
TGT static float dot_q8_0(const uint8_t *w, const hp_qxblk *xb, int K) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < K / 32; i++, w += 34, xb++)
        FMA_BLOCK(acc, h2f(w) * xb->d, dot32(_mm256_loadu_si256((const __m256i *)(w + 2)), xb->q, 1));
    return hsum8(acc);
}
/* Six-bit scale and min of sub-block j of Q4_K (as weights/quant.c). */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}
/* Q4_K: sub-block j (32 values) is x block j: d·sc_j·Σ(q·xq)·dx − dmin·m_j·s. */
TGT static float dot_q4_k(const uint8_t *w, const hp_qxblk *xb, int K) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    float corr = 0;
    for (int i = 0; i < K / 256; i++, w += 144, xb += 8) {
        float d = h2f(w), dmin = h2f(w + 2);
        for (int p = 0; p < 4; p++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * p));
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * p, w + 4, &sc0, &m0);
            scale_min_k4(2 * p + 1, w + 4, &sc1, &m1);
            const hp_qxblk *x0 = xb + 2 * p, *x1 = x0 + 1;
            FMA_BLOCK(acc, d * (float)sc0 * x0->d, dot32(_mm256_and_si256(v, lo4), x0->q, 0));
            FMA_BLOCK(acc, d * (float)sc1 * x1->d,
                      dot32(_mm256_and_si256(_mm256_srli_epi16(v, 4), lo4), x1->q, 0));
            corr += dmin * ((float)m0 * x0->s + (float)m1 * x1->s);
        }
    }
    return hsum8(acc) - corr;
}
/* Q6_K: d·sc·(q − 32) with q of 6 bits; x block 4h + k holds values 128h + 32k .. + 31, whose
 * two 16-value halves have scales sc[8h + 2k] and sc[8h + 2k + 1]. */
TGT static float dot_q6_k(const uint8_t *w, const hp_qxblk *xb, int K) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(3), c32 = _mm256_set1_epi8(32);
    for (int i = 0; i < K / 256; i++, w += 210) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192);
        float d = h2f(w + 208);
        for (int h = 0; h < 2; h++) {
            __m256i hv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            for (int k = 0; k < 4; k++, xb++) {
                __m256i lv = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32 * (k % 2)));
                if (k >= 2) lv = _mm256_srli_epi16(lv, 4);
                __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hv, _mm_cvtsi32_si128(2 * k)), lo2);
                __m256i q = _mm256_sub_epi8(
                    _mm256_or_si256(_mm256_and_si256(lv, lo4), _mm256_slli_epi16(hi, 4)), c32);
                __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q));
                __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1));
                __m256i sl = _mm256_madd_epi16(wl, _mm256_loadu_si256((const __m256i *)xb->q));
                __m256i sh = _mm256_madd_epi16(wh, _mm256_loadu_si256((const __m256i *)(xb->q + 16)));
                float dd = d * xb->d;
                FMA_BLOCK(acc, dd * (float)sc[8 * h + 2 * k], sl);
                FMA_BLOCK(acc, dd * (float)sc[8 * h + 2 * k + 1], sh);
            }
        }
    }
    return hsum8(acc);
}
#endif

typedef float (*dot_fn)(const uint8_t *, const hp_qxblk *, int);

static dot_fn simd_dot(hp_dtype dt) {
#ifdef HAVE_X86
    if (have_avx2()) switch (dt) {
        case HP_Q4_0: return dot_q4_0;
        case HP_Q4_1: return dot_q4_1;
        case HP_Q5_0: return dot_q5_0;
        case HP_Q8_0: return dot_q8_0;
        case HP_Q4_K: return dot_q4_k;
        case HP_Q6_K: return dot_q6_k;
        default: break;
        }
#endif
    (void)dt;
    return NULL;
}

float hp_cpu_dot_q(hp_dtype dt, const void *wrow, const hp_qxblk *xb, int K) {
    dot_fn f = simd_dot(dt);
    return f ? f(wrow, xb, K) : dot_scalar(dt, wrow, xb, K);
}

/* Rows of W per dynamically scheduled chunk: about 16 KiB of weights, at least 4 rows, and at
 * least 8 chunks per thread where N allows. */
static int chunk_rows(int N, size_t row_bytes, int nth) {
    int r = (int)(16384 / (row_bytes ? row_bytes : 1));
    if (r < 4) r = 4;
    int cap = N / (8 * nth);
    if (r > cap) r = cap > 4 ? cap : 4;
    return r;
}

/* Rows [c·cr, (c+1)·cr) of W against the T quantised activation rows. */
typedef struct gemv_job {
    float *y;
    const hp_qxblk *xq;
    const uint8_t *w;
    size_t rb;
    hp_dtype dt;
    dot_fn f;
    int T, N, K, cr;
} gemv_job;

static void gemv_chunk(void *ctx, int c) {
    const gemv_job *j = ctx;
    int n1 = (c + 1) * j->cr < j->N ? (c + 1) * j->cr : j->N, nb = j->K / 32;
    for (int n = c * j->cr; n < n1; n++) {
        const uint8_t *row = j->w + (size_t)n * j->rb;
        for (int t = 0; t < j->T; t++)
            j->y[(size_t)t * j->N + n] = j->f ? j->f(row, j->xq + (size_t)t * nb, j->K)
                                              : dot_scalar(j->dt, row, j->xq + (size_t)t * nb, j->K);
    }
}

/* Per-thread float32 tile for the dequantising GEMM, kept between calls (grown as needed). */
static _Thread_local float *tile_buf;
static _Thread_local size_t tile_cap;

static float *tile_get(size_t n) {
    if (n > tile_cap) {
        free(tile_buf);
        tile_buf = malloc(n * sizeof(float));
        tile_cap = tile_buf ? n : 0;
    }
    return tile_buf;
}

int hp_cpu_matmul_q(float *y, const float *x, const void *W, hp_dtype dt, int T, int N, int K) {
    int ok;
    size_t rb = hp_dtype_nbytes(dt, (uint64_t)K, &ok);
    const uint8_t *w = W;
    int nth = omp_get_max_threads();
    if (T >= HP_Q_GEMM_MIN_T) {
        /* Tiles of 16..128 rows, about 8 per thread. */
        int tr = N / (8 * nth);
        tr = tr < 16 ? 16 : tr > 128 ? 128 : tr & ~15;
        int nt = (N + tr - 1) / tr, fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
        for (int i = 0; i < nt; i++) {
            int n0 = i * tr, nn = N - n0 < tr ? N - n0 : tr;
            float *buf = tile_get((size_t)tr * K);
            if (!buf) {
                fail = 1;
                continue;
            }
            hp_dequant_f32(dt, w + (size_t)n0 * rb, buf, (uint64_t)nn * K);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nn, K, 1.0f, x, K, buf, K, 0.0f,
                        y + n0, N);
        }
        if (!fail) return 0;
        /* out of memory for a tile: fall through to the path that needs less */
    }
    int nb = K / 32;
    hp_qxblk *xq = malloc(sizeof(hp_qxblk) * (size_t)nb * T);
    if (!xq) return -1;
    for (int t = 0; t < T; t++) hp_cpu_quantize_qx(x + (size_t)t * K, xq + (size_t)t * nb, K);
    int cr = chunk_rows(N, rb, hp_pool_threads());
    gemv_job job = {y, xq, w, rb, dt, simd_dot(dt), T, N, K, cr};
    hp_pool_run((N + cr - 1) / cr, gemv_chunk, &job);
    free(xq);
    return 0;
}

int hp_cpu_embed_q(float *x, const void *table, hp_dtype dt, const int32_t *ids, int T, int D,
                   int V) {
    int ok;
    size_t rb = hp_dtype_nbytes(dt, (uint64_t)D, &ok);
    for (int t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= V) return -1;
        hp_dequant_f32(dt, (const uint8_t *)table + (size_t)ids[t] * rb, x + (size_t)t * D,
                       (uint64_t)D);
    }
    return 0;
}
