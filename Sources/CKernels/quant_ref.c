// Scalar reference formats: GGUF block layouts, row dequantization and quantization.
// These define the numerics; every fast path is tested against them.
#include "ck_internal.h"
#include <math.h>

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

// ---- float formats ----
void ck_deq_f32_ref(const void *s, float *d, int64_t n) { memcpy(d, s, (size_t)n * 4); }
void ck_deq_f16_ref(const void *s, float *d, int64_t n) {
    const uint8_t *p = s;
    for (int64_t i = 0; i < n; i++) d[i] = ck_f16_to_f32(rd16(p + 2 * i));
}
void ck_deq_bf16_ref(const void *s, float *d, int64_t n) {
    const uint8_t *p = s;
    for (int64_t i = 0; i < n; i++) d[i] = ck_bf16_to_f32(rd16(p + 2 * i));
}
void ck_q_f32_ref(const float *s, void *d, int64_t n) { memcpy(d, s, (size_t)n * 4); }
void ck_q_f16_ref(const float *s, void *d, int64_t n) {
    uint8_t *p = d;
    for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, ck_f32_to_f16(s[i]));
}
void ck_q_bf16_ref(const float *s, void *d, int64_t n) {
    uint8_t *p = d;
    for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, ck_f32_to_bf16(s[i]));
}

// ---- Q4_0: {f16 d; u8 qs[16]}, x = (q - 8) * d; low nibbles = elements 0..15, high = 16..31 ----
void ck_deq_q4_0_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 18, y += CK_QK) {
        float d = ck_f16_to_f32(rd16(b));
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 15) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}
void ck_q_q4_0_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 18, x += CK_QK) {
        // scale from the signed value of largest magnitude, so it maps to -8 exactly
        float amax = 0, max = 0;
        for (int j = 0; j < CK_QK; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, ck_f32_to_f16(d));
        for (int j = 0; j < 16; j++) {
            int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + 16] * id + 8.5f);
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            b[2 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

// ---- Q4_1: {f16 d; f16 m; u8 qs[16]}, x = q * d + m (one rounding: fmaf, as the FMA paths) ----
void ck_deq_q4_1_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 20, y += CK_QK) {
        float d = ck_f16_to_f32(rd16(b)), m = ck_f16_to_f32(rd16(b + 2));
        for (int j = 0; j < 16; j++) {
            y[j] = fmaf((float)(b[4 + j] & 15), d, m);
            y[j + 16] = fmaf((float)(b[4 + j] >> 4), d, m);
        }
    }
}
void ck_q_q4_1_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 20, x += CK_QK) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < CK_QK; j++) {
            mn = x[j] < mn ? x[j] : mn;
            mx = x[j] > mx ? x[j] : mx;
        }
        float d = (mx - mn) / 15.0f, id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, ck_f32_to_f16(d));
        wr16(b + 2, ck_f32_to_f16(mn));
        for (int j = 0; j < 16; j++) {
            int lo = (int)((x[j] - mn) * id + 0.5f), hi = (int)((x[j + 16] - mn) * id + 0.5f);
            lo = lo < 0 ? 0 : lo > 15 ? 15 : lo;
            hi = hi < 0 ? 0 : hi > 15 ? 15 : hi;
            b[4 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

// ---- Q8_0: {f16 d; i8 qs[32]}, x = q * d ----
void ck_deq_q8_0_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 34, y += CK_QK) {
        float d = ck_f16_to_f32(rd16(b));
        for (int j = 0; j < CK_QK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
    }
}
void ck_q_q8_0_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 34, x += CK_QK) {
        float amax = 0;
        for (int j = 0; j < CK_QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, ck_f32_to_f16(d));
        for (int j = 0; j < CK_QK; j++) {
            float v = roundf(x[j] * id);
            v = v < -127 ? -127 : v > 127 ? 127 : v;
            b[2 + j] = (uint8_t)(int8_t)v;
        }
    }
}

// ---- Activations for quantized weights: int8 blocks with scale and sums (see ck_internal.h) ----
// Round half to even (nearbyintf in the default mode) so the SIMD version can match exactly.
void ck_qact_row_scalar(const float *x, int64_t cols, void *dst) {
    int64_t nb = cols / CK_QK;
    int8_t *q = dst;
    float *dd = (float *)((uint8_t *)dst + cols), *ss = dd + nb;
    int32_t *sum = (int32_t *)(ss + nb);
    for (int64_t b = 0; b < nb; b++, x += CK_QK, q += CK_QK) {
        float amax = 0;
        for (int j = 0; j < CK_QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int32_t s = 0;
        for (int j = 0; j < CK_QK; j++) {
            float v = nearbyintf(x[j] * id);
            v = v < -127 ? -127 : v > 127 ? 127 : v;
            q[j] = (int8_t)v;
            s += q[j];
        }
        dd[b] = d;
        ss[b] = d * (float)s;
        sum[b] = s;
    }
}
