/* common.c: error messages, dtype tables and IEEE half conversions. */
#include "common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int hp_errf(hp_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const struct {
    const char *name;
    int block;
    size_t bytes;
} dtype_table[HP_DTYPE_COUNT] = {
    [HP_F32] = {"F32", 1, 4},      [HP_F16] = {"F16", 1, 2},      [HP_BF16] = {"BF16", 1, 2},
    [HP_I32] = {"I32", 1, 4},      [HP_I64] = {"I64", 1, 8},      [HP_U8] = {"U8", 1, 1},
    [HP_Q4_0] = {"Q4_0", 32, 18},  [HP_Q4_1] = {"Q4_1", 32, 20},  [HP_Q5_0] = {"Q5_0", 32, 22},
    [HP_Q5_1] = {"Q5_1", 32, 24},  [HP_Q8_0] = {"Q8_0", 32, 34},  [HP_Q2_K] = {"Q2_K", 256, 84},
    [HP_Q3_K] = {"Q3_K", 256, 110}, [HP_Q4_K] = {"Q4_K", 256, 144}, [HP_Q5_K] = {"Q5_K", 256, 176},
    [HP_Q6_K] = {"Q6_K", 256, 210}, [HP_Q8_K] = {"Q8_K", 256, 292},
};

const char *hp_dtype_name(hp_dtype t) {
    return (t >= 0 && t < HP_DTYPE_COUNT) ? dtype_table[t].name : "?";
}
int hp_dtype_block(hp_dtype t) { return (t >= 0 && t < HP_DTYPE_COUNT) ? dtype_table[t].block : 0; }
size_t hp_dtype_block_bytes(hp_dtype t) {
    return (t >= 0 && t < HP_DTYPE_COUNT) ? dtype_table[t].bytes : 0;
}

size_t hp_dtype_nbytes(hp_dtype t, uint64_t n, int *ok) {
    int blk = hp_dtype_block(t);
    size_t out;
    *ok = 0;
    if (blk <= 0 || n % (uint64_t)blk) return 0;
    if ((uint64_t)(n / blk) > SIZE_MAX) return 0;
    if (!hp_mul_ok((size_t)(n / blk), hp_dtype_block_bytes(t), &out)) return 0;
    *ok = 1;
    return out;
}

float hp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t hp_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t aexp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffffu;
    if (aexp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int e = (int)aexp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal or zero in half */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
    return (uint16_t)half;
}

uint64_t hp_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
