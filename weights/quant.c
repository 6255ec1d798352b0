/* quant.c: conversion of stored tensors to float32: plain types (F32, F16, BF16, I32, I64, U8)
 * and the GGML block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (32 values per block) and the k-quants
 * Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K (256-value super-blocks of 16 or 32-value sub-blocks).
 * Written from the block layouts; all multi-byte fields are little-endian and read bytewise, so
 * the source may be unaligned. Checked against gguf-py's numpy dequantize (tests/test_weights.c).
 */
#include <stdlib.h>

#include "store.h"

#define QK   32  /* values per block of the simple formats */
#define QK_K 256 /* values per k-quant super-block */

static inline uint16_t le16(const uint8_t *b) { return (uint16_t)(b[0] | b[1] << 8); }
static inline uint32_t le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline float f16(const uint8_t *b) { return hp_f16_to_f32(le16(b)); }

/* Q4_0: f16 d, 16 bytes of nibbles; value j is the low nibble of byte j, value j+16 the high
 * nibble; x = d * (q - 8). */
static void dq_q4_0(const uint8_t *b, float *y) {
    float d = f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)((qs[j] & 0xF) - 8);
        y[j + QK / 2] = d * (float)((qs[j] >> 4) - 8);
    }
}

/* Q4_1: f16 d, f16 m, nibbles as Q4_0; x = d * q + m. */
static void dq_q4_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)(qs[j] & 0xF) + m;
        y[j + QK / 2] = d * (float)(qs[j] >> 4) + m;
    }
}

/* Q5_0: f16 d, u32 qh (bit j = fifth bit of value j), nibbles as Q4_0; x = d * (q - 16). */
static void dq_q5_0(const uint8_t *b, float *y) {
    float d = f16(b);
    uint32_t qh = le32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        int lo = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + QK / 2)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + QK / 2] = d * (float)(hi - 16);
    }
}

/* Q5_1: f16 d, f16 m, u32 qh, nibbles; x = d * q + m. */
static void dq_q5_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    uint32_t qh = le32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        int lo = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + QK / 2)) & 1) << 4;
        y[j] = d * (float)lo + m;
        y[j + QK / 2] = d * (float)hi + m;
    }
}

/* Q8_0: f16 d, 32 int8; x = d * q. */
static void dq_q8_0(const uint8_t *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < QK; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

/* Q2_K: 16 scale bytes (low nibble scale, high nibble min, one per 16 values), 64 bytes of 2-bit
 * values, f16 d, f16 dmin. Each 128-value half uses 32 bytes of qs: value 32*s + l (s = 0..3,
 * l = 0..31) is bits 2s..2s+1 of byte l; x = d * sc * q - dmin * m. */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = f16(b + 80), dmin = f16(b + 82);
    for (int g = 0; g < QK_K / 16; g++) { /* g = 16-value group */
        int half = g / 8, s = (g % 8) / 2, l0 = (g % 2) * 16;
        float dl = d * (float)(sc[g] & 0xF), ml = dmin * (float)(sc[g] >> 4);
        const uint8_t *q = qs + 32 * half + l0;
        float *yy = y + 16 * g;
        for (int l = 0; l < 16; l++) yy[l] = dl * (float)((q[l] >> (2 * s)) & 3) - ml;
    }
}

/* Q3_K: 32 bytes hmask, 64 bytes of 2-bit low parts, 12 bytes packing 16 six-bit scales, f16 d.
 * Low parts are laid out as in Q2_K; the high bit of value 32*k + l (k = 0..7) is bit k of
 * hmask[l], and a clear bit subtracts 4. Scale i: low nibble from byte i (i < 8) or the high
 * nibble of byte i-8, top two bits from byte 8 + i%4 at bit 2*(i/4); the scale is biased by 32. */
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *sb = b + 96;
    float d = f16(b + 108);
    for (int g = 0; g < QK_K / 16; g++) {
        int lo = g < 8 ? sb[g] & 0xF : sb[g - 8] >> 4;
        int hi = (sb[8 + g % 4] >> (2 * (g / 4))) & 3;
        float dl = d * (float)((lo | hi << 4) - 32);
        int half = g / 8, s = (g % 8) / 2, l0 = (g % 2) * 16, k = g / 2;
        const uint8_t *q = qs + 32 * half + l0;
        float *yy = y + 16 * g;
        for (int l = 0; l < 16; l++) {
            int v = ((q[l] >> (2 * s)) & 3) - ((hm[l0 + l] >> k) & 1 ? 0 : 4);
            yy[l] = dl * (float)v;
        }
    }
}

/* Six-bit scale and min of 32-value sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K:
 * j < 4 uses the low 6 bits of bytes j and j+4; j >= 4 takes its low nibbles from byte j+4 and
 * its top two bits from the high bits of bytes j-4 and j. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles. Each 64 values share 32 bytes:
 * low nibbles are sub-block 2p, high nibbles sub-block 2p+1; x = d * sc * q - dmin * m. */
static void dq_q4_k(const uint8_t *b, float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sb = b + 4, *qs = b + 16;
    for (int j = 0; j < QK_K / 32; j++) {
        int sc, m;
        scale_min_k4(j, sb, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j / 2);
        int shift = 4 * (j % 2);
        for (int l = 0; l < 32; l++) y[32 * j + l] = dl * (float)((q[l] >> shift) & 0xF) - ml;
    }
}

/* Q5_K: as Q4_K plus 32 bytes qh before the nibbles: the fifth bit of value 32*j + l is bit j of
 * qh[l]. */
static void dq_q5_k(const uint8_t *b, float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *sb = b + 4, *qh = b + 16, *qs = b + 48;
    for (int j = 0; j < QK_K / 32; j++) {
        int sc, m;
        scale_min_k4(j, sb, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        const uint8_t *q = qs + 32 * (j / 2);
        int shift = 4 * (j % 2);
        for (int l = 0; l < 32; l++) {
            int v = ((q[l] >> shift) & 0xF) | ((qh[l] >> j) & 1) << 4;
            y[32 * j + l] = dl * (float)v - ml;
        }
    }
}

/* Q6_K: 128 bytes low nibbles, 64 bytes of 2-bit high parts, 16 int8 scales (one per 16
 * values), f16 d. Per 128-value half h, value 32*k + l (k = 0..3, l = 0..31) takes its low nibble
 * from ql[64h + l + 32*(k%2)] (high nibble when k >= 2) and its top bits from bits 2k..2k+1 of
 * qh[32h + l]; x = d * scale * (q - 32). */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int lo = (ql[64 * h + l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
                int hi = (qh[32 * h + l] >> (2 * k)) & 3;
                int idx = 128 * h + 32 * k + l;
                y[idx] = d * (float)sc[idx / 16] * (float)((lo | hi << 4) - 32);
            }
}

/* Q8_K: f32 d, 256 int8, 16 int16 group sums (only used by dot products); x = d * q. */
static void dq_q8_k(const uint8_t *b, float *y) {
    uint32_t u = le32(b);
    float d;
    memcpy(&d, &u, 4);
    for (int j = 0; j < QK_K; j++) y[j] = d * (float)(int8_t)b[4 + j];
}

typedef void (*dq_block_fn)(const uint8_t *, float *);

static dq_block_fn block_fn(hp_dtype dt) {
    switch (dt) {
    case HP_Q4_0: return dq_q4_0;
    case HP_Q4_1: return dq_q4_1;
    case HP_Q5_0: return dq_q5_0;
    case HP_Q5_1: return dq_q5_1;
    case HP_Q8_0: return dq_q8_0;
    case HP_Q2_K: return dq_q2_k;
    case HP_Q3_K: return dq_q3_k;
    case HP_Q4_K: return dq_q4_k;
    case HP_Q5_K: return dq_q5_k;
    case HP_Q6_K: return dq_q6_k;
    case HP_Q8_K: return dq_q8_k;
    default: return NULL;
    }
}

/* Below this many elements a parallel region costs more than it saves. */
#define PAR_MIN_ELEMS (1 << 16)

void hp_dequant_f32(hp_dtype dt, const void *src, float *dst, uint64_t n) {
    const uint8_t *s = src;
    int64_t ni = (int64_t)n;
    switch (dt) {
    case HP_F32: memcpy(dst, s, (size_t)n * 4); return;
    case HP_F16:
#pragma omp parallel for schedule(static) if (ni >= PAR_MIN_ELEMS)
        for (int64_t i = 0; i < ni; i++) dst[i] = hp_f16_to_f32(le16(s + 2 * i));
        return;
    case HP_BF16:
#pragma omp parallel for schedule(static) if (ni >= PAR_MIN_ELEMS)
        for (int64_t i = 0; i < ni; i++) dst[i] = hp_bf16_to_f32(le16(s + 2 * i));
        return;
    case HP_I32:
        for (int64_t i = 0; i < ni; i++) dst[i] = (float)(int32_t)le32(s + 4 * i);
        return;
    case HP_I64:
        for (int64_t i = 0; i < ni; i++) {
            int64_t v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    case HP_U8:
        for (int64_t i = 0; i < ni; i++) dst[i] = (float)s[i];
        return;
    default: break;
    }
    dq_block_fn fn = block_fn(dt);
    int blk = hp_dtype_block(dt);
    if (!fn || blk <= 0) return;
    size_t bb = hp_dtype_block_bytes(dt);
    int64_t nb = ni / blk;
#pragma omp parallel for schedule(static) if (ni >= PAR_MIN_ELEMS)
    for (int64_t i = 0; i < nb; i++) fn(s + (size_t)i * bb, dst + (size_t)i * (size_t)blk);
}

int hp_tensor_to_f32(const hp_tensor *t, float *dst, hp_err *e) {
    if (!t || (!dst && t->nelem)) return hp_errf(e, "hp_tensor_to_f32: null argument");
    if (t->dt < 0 || t->dt >= HP_DTYPE_COUNT)
        return hp_errf(e, "%s: tensor '%s': invalid dtype %d", t->file, t->name, (int)t->dt);
    int ok;
    size_t nb = hp_dtype_nbytes(t->dt, t->nelem, &ok);
    if (!ok || nb != t->nbytes || (t->nelem && !t->data))
        return hp_errf(e, "%s: tensor '%s': %llu x %s elements do not match its %zu bytes", t->file,
                       t->name, (unsigned long long)t->nelem, hp_dtype_name(t->dt), t->nbytes);
    if (t->nelem) hp_dequant_f32(t->dt, t->data, dst, t->nelem);
    return 0;
}
