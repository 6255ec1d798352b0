/* cuda_bf16.h (cuda_emu): __nv_bfloat16 / __nv_bfloat162 and the conversions the kernels use,
 * bit-exact to CUDA's: float -> bf16 rounds to nearest even, any NaN becomes the canonical
 * 0x7fff (as cvt.rn.bf16.f32 and cuda_bf16.hpp's host path do); bf16 -> float is exact. */
#ifndef HP_EMU_CUDA_BF16_H
#define HP_EMU_CUDA_BF16_H

#include "emu_device.h"

struct __nv_bfloat16 {
    unsigned short __x;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    unsigned u = __float_as_uint(f);
    __nv_bfloat16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.__x = 0x7fff;
        return r;
    }
    unsigned hi = u >> 16, rem = u << 16;
    if (rem > 0x80000000u || (rem == 0x80000000u && (hi & 1u))) hi++;
    r.__x = (unsigned short)hi;
    return r;
}
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((unsigned)b.__x << 16); }
static inline float2 __bfloat1622float2(__nv_bfloat162 b) {
    return make_float2(__bfloat162float(b.x), __bfloat162float(b.y));
}
static inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    __nv_bfloat162 r;
    r.x = __float2bfloat16_rn(a);
    r.y = __float2bfloat16_rn(b);
    return r;
}
static inline __nv_bfloat162 __float22bfloat162_rn(float2 f) { return __floats2bfloat162_rn(f.x, f.y); }

#endif
