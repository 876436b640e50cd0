// Scalar f16 / bf16 <-> f32 conversion (IEEE round-to-nearest-even, inf/nan/subnormals kept).
#include "ck_internal.h"

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float ck_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24 is exact in f32
        float f = (float)mant * 0x1p-24f;
        return u2f(f2u(f) | sign);
    }
    if (exp == 31) {
        // inf, or nan made quiet (as F16C's vcvtph2ps does), payload kept
        return u2f(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
    }
    return u2f(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t ck_f32_to_f16(float f) {
    uint32_t x = f2u(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) {  // inf or nan (quiet, top payload bits kept)
        if (x == 0x7f800000u) return sign | 0x7c00;
        return sign | 0x7e00 | (uint16_t)((x >> 13) & 0x3ff);
    }
    if (x >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds to inf
    if (x < 0x38800000u) {
        // below the smallest normal (2^-14): adding 0.5 (ulp 2^-24) rounds to the subnormal grid
        float r = u2f(x) + 0.5f;
        return sign | (uint16_t)(f2u(r) - 0x3f000000u);
    }
    uint32_t odd = (x >> 13) & 1;
    x += 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round half to even
    return sign | (uint16_t)(x >> 13);
}

float ck_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t ck_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet nan
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
