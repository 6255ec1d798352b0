/* common.h: error reporting, dtypes and half-precision conversions shared by every layer.
 * Parsers and loaders return an int status (0 ok, -1 error) and fill an hp_err with a one-line
 * message that names the file and the problem; only main() prints it and exits. */
#ifndef HP_COMMON_H
#define HP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct hp_err {
    char msg[1024];
} hp_err;

/* Sets e->msg (printf-style) and returns -1 so callers can write `return hp_errf(e, ...)`.
 * e may be NULL. */
int hp_errf(hp_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Element types of stored tensors. Block-quantised GGUF types come after the plain ones. */
typedef enum hp_dtype {
    HP_F32 = 0,
    HP_F16,
    HP_BF16,
    HP_I32,
    HP_I64,
    HP_U8,
    HP_Q4_0,
    HP_Q4_1,
    HP_Q5_0,
    HP_Q5_1,
    HP_Q8_0,
    HP_Q2_K,
    HP_Q3_K,
    HP_Q4_K,
    HP_Q5_K,
    HP_Q6_K,
    HP_Q8_K,
    HP_DTYPE_COUNT
} hp_dtype;

const char *hp_dtype_name(hp_dtype t);
/* Elements per block and bytes per block (1 and sizeof(element) for plain types). */
int hp_dtype_block(hp_dtype t);
size_t hp_dtype_block_bytes(hp_dtype t);
/* Bytes for n elements; returns 0 and sets *ok = 0 when n is not a multiple of the block size
 * or the size overflows. */
size_t hp_dtype_nbytes(hp_dtype t, uint64_t n, int *ok);

static inline float hp_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t hp_f32_to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
/* FNV-1a 64-bit hash of n bytes, continuing from h (start with HP_FNV_OFFSET): content keys. */
#define HP_FNV_OFFSET 1469598103934665603ull
uint64_t hp_fnv1a(uint64_t h, const void *data, size_t n);

float hp_f16_to_f32(uint16_t h);
uint16_t hp_f32_to_f16(float f);

/* Overflow-checked size arithmetic: return 0 on overflow. */
static inline int hp_mul_ok(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static inline int hp_add_ok(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

#endif
