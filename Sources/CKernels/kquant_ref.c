// Scalar reference for Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K (layouts in ck_kquants.h): dequantization
// (ggml's numerics: the same products in the same order, one rounding where ggml has one), simple
// quantizers that make test data (not ggml's search for the best scales: files are made by llama.cpp,
// we only read them), the K-quant activation rows, and the K-quant integer-product kernel the SIMD
// paths reproduce up to float summation order. (Q5_0 / Q5_1 products use the Q4_x panels: matmul_*.c.)
#include "ck_kquants.h"
#include <math.h>
#include <stdlib.h>

static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---- Q5_0 / Q5_1 ----

static inline int q5_quant(const uint8_t *qs, uint32_t qh, int e) {
    int lo = e < 16 ? (qs[e] & 15) : (qs[e - 16] >> 4);
    return lo | (int)((qh >> e) & 1) << 4;
}

void ck_deq_q5_0_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 22, y += CK_QK) {
        float d = ck_f16_to_f32(ck_rd16(b));
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        for (int e = 0; e < CK_QK; e++) y[e] = (float)(q5_quant(b + 6, qh, e) - 16) * d;
    }
}

void ck_deq_q5_1_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 24, y += CK_QK) {
        float d = ck_f16_to_f32(ck_rd16(b)), m = ck_f16_to_f32(ck_rd16(b + 2));
        uint32_t qh;
        memcpy(&qh, b + 4, 4);
        for (int e = 0; e < CK_QK; e++) y[e] = fmaf((float)q5_quant(b + 8, qh, e), d, m);
    }
}

static void q5_pack(const int *q, uint8_t *qhp, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
    for (int e = 0; e < CK_QK; e++) qh |= (uint32_t)(q[e] >> 4) << e;
    memcpy(qhp, &qh, 4);
}

void ck_q_q5_0_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 22, x += CK_QK) {
        float amax = 0, max = 0;  // the signed value of largest magnitude maps to -16
        for (int j = 0; j < CK_QK; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        float d = max / -16.0f, id = d != 0 ? 1.0f / d : 0.0f;
        int q[CK_QK];
        for (int j = 0; j < CK_QK; j++) q[j] = clampi((int)(x[j] * id + 16.5f), 0, 31);
        wr16(b, ck_f32_to_f16(d));
        q5_pack(q, b + 2, b + 6);
    }
}

void ck_q_q5_1_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 24, x += CK_QK) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < CK_QK; j++) {
            mn = x[j] < mn ? x[j] : mn;
            mx = x[j] > mx ? x[j] : mx;
        }
        float d = (mx - mn) / 31.0f, id = d != 0 ? 1.0f / d : 0.0f;
        int q[CK_QK];
        for (int j = 0; j < CK_QK; j++) q[j] = clampi((int)((x[j] - mn) * id + 0.5f), 0, 31);
        wr16(b, ck_f32_to_f16(d));
        wr16(b + 2, ck_f32_to_f16(mn));
        q5_pack(q, b + 4, b + 8);
    }
}

// ---- Q2_K / Q3_K ----
// Value v = 128 n + 32 j + l (n < 2, j < 4, l < 32): two low bits at bits 2j, 2j+1 of qs[32 n + l];
// Q3_K's third bit is bit 4 n + j of hmask[l]. Sub-block (16 values) v / 16.

static inline int k2_bits(const uint8_t *qs, int v) { return (qs[32 * (v / 128) + v % 32] >> (2 * ((v / 32) & 3))) & 3; }
static inline int k3_hbit(const uint8_t *hm, int v) { return (hm[v % 32] >> (4 * (v / 128) + ((v / 32) & 3))) & 1; }

void ck_deq_q2_k_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += 84, y += CK_QKK) {
        const float d = ck_f16_to_f32(ck_rd16(b + 80)), dmin = ck_f16_to_f32(ck_rd16(b + 82));
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)(b[g] & 15), ml = dmin * (float)(b[g] >> 4);  // ggml: dl * q - ml
            for (int v = 16 * g; v < 16 * g + 16; v++) y[v] = fmaf(dl, (float)k2_bits(b + 16, v), -ml);
        }
    }
}

void ck_deq_q3_k_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += 110, y += CK_QKK) {
        const float d = ck_f16_to_f32(ck_rd16(b + 108));
        int8_t sc[16];
        ck_q3k_scales(b + 96, sc);
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)sc[g];
            for (int v = 16 * g; v < 16 * g + 16; v++)
                y[v] = dl * (float)(k2_bits(b + 32, v) - (k3_hbit(b, v) ? 0 : 4));
        }
    }
}

// The test quantizers' sub-block range: [min(0, smallest), max(0, largest)] of x[0..<n].
static void range_with_zero(const float *x, int n, float *lo, float *hi) {
    *lo = 0;
    *hi = 0;
    for (int l = 0; l < n; l++) {
        *lo = x[l] < *lo ? x[l] : *lo;
        *hi = x[l] > *hi ? x[l] : *hi;
    }
}

// Test-data quantizers. Q2_K: per sub-block the affine range [min(0, lo), max(0, hi)] in 3 steps,
// scales and mins as 4-bit multiples of the block's largest. Q3_K: per sub-block a signed scale that
// maps the value of largest magnitude to -4, as 6-bit multiples (-32..31) of the largest.
void ck_q_q2_k_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += 84, x += CK_QKK) {
        float scale[16], mins[16], maxs = 0, maxm = 0;
        for (int g = 0; g < 16; g++) {
            float lo, hi;
            range_with_zero(x + 16 * g, 16, &lo, &hi);
            scale[g] = (hi - lo) / 3.0f;
            mins[g] = -lo;
            maxs = scale[g] > maxs ? scale[g] : maxs;
            maxm = mins[g] > maxm ? mins[g] : maxm;
        }
        const uint16_t dh = ck_f32_to_f16(maxs / 15.0f), mh = ck_f32_to_f16(maxm / 15.0f);
        const float d = ck_f16_to_f32(dh), dmin = ck_f16_to_f32(mh);
        memset(b, 0, 84);
        for (int g = 0; g < 16; g++) {
            const int sc = d > 0 ? clampi((int)lroundf(scale[g] / d), 0, 15) : 0;
            const int m = dmin > 0 ? clampi((int)lroundf(mins[g] / dmin), 0, 15) : 0;
            b[g] = (uint8_t)(sc | m << 4);
            const float ds = d * (float)sc, ms = dmin * (float)m, id = ds != 0 ? 1.0f / ds : 0.0f;
            for (int v = 16 * g; v < 16 * g + 16; v++) {
                const int q = clampi((int)lroundf((x[v] + ms) * id), 0, 3);
                b[16 + 32 * (v / 128) + v % 32] |= (uint8_t)(q << (2 * ((v / 32) & 3)));
            }
        }
        wr16(b + 80, dh);
        wr16(b + 82, mh);
    }
}

void ck_q_q3_k_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += 110, x += CK_QKK) {
        float scale[16], maxs = 0;
        for (int g = 0; g < 16; g++) {
            float amax = 0, max = 0;
            for (int l = 0; l < 16; l++)
                if (fabsf(x[16 * g + l]) > amax) { amax = fabsf(x[16 * g + l]); max = x[16 * g + l]; }
            scale[g] = max / -4.0f;
            maxs = amax / 4.0f > maxs ? amax / 4.0f : maxs;
        }
        const uint16_t dh = ck_f32_to_f16(maxs / 32.0f);
        const float d = ck_f16_to_f32(dh);
        memset(b, 0, 110);
        for (int g = 0; g < 16; g++) {
            const int sc = d > 0 ? clampi((int)lroundf(scale[g] / d), -32, 31) : 0, u = sc + 32;
            if (g < 8) b[96 + g] |= (uint8_t)(u & 15);
            else b[96 + g - 8] |= (uint8_t)((u & 15) << 4);
            b[104 + (g & 3)] |= (uint8_t)((u >> 4) << (2 * (g >> 2)));
            const float ds = d * (float)sc, id = ds != 0 ? 1.0f / ds : 0.0f;
            for (int v = 16 * g; v < 16 * g + 16; v++) {
                const int q = clampi((int)lroundf(x[v] * id), -4, 3) + 4;  // stored: 2 low bits, third bit set for q >= 0
                b[32 + 32 * (v / 128) + v % 32] |= (uint8_t)((q & 3) << (2 * ((v / 32) & 3)));
                b[v % 32] |= (uint8_t)((q >> 2) << (4 * (v / 128) + ((v / 32) & 3)));
            }
        }
        wr16(b + 108, dh);
    }
}

// ---- Q4_K / Q5_K ----

// Sub-block s (0..7) of a Q4_K / Q5_K block: element l (0..31) is value 32 s + l.
static inline int k45_quant(const uint8_t *qs, const uint8_t *qh, int s, int l) {
    int v = (s & 1) ? qs[32 * (s / 2) + l] >> 4 : qs[32 * (s / 2) + l] & 15;
    if (qh) v |= ((qh[l] >> s) & 1) << 4;
    return v;
}

static void deq_k45(const uint8_t *b, float *y, int64_t n, int five) {
    const size_t bb = five ? 176 : 144;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += bb, y += CK_QKK) {
        float d = ck_f16_to_f32(ck_rd16(b)), dmin = ck_f16_to_f32(ck_rd16(b + 2));
        uint8_t sc[8], m[8];
        ck_kq_scales(b + 4, sc, m);
        const uint8_t *qh = five ? b + 16 : NULL, *qs = b + (five ? 48 : 16);
        for (int s = 0; s < 8; s++) {
            float ds = d * (float)sc[s], ms = dmin * (float)m[s];  // ggml: d1 * q - m1
            for (int l = 0; l < 32; l++) y[32 * s + l] = fmaf(ds, (float)k45_quant(qs, qh, s, l), -ms);
        }
    }
}
void ck_deq_q4_k_ref(const void *s, float *y, int64_t n) { deq_k45(s, y, n, 0); }
void ck_deq_q5_k_ref(const void *s, float *y, int64_t n) { deq_k45(s, y, n, 1); }

// Test-data quantizer: per sub-block an affine range [min(0, lo), hi], then 6-bit scales / mins
// relative to the block's largest, then the quants with the stored (f16, 6-bit) values.
static void q_k45(const float *x, uint8_t *b, int64_t n, int five) {
    const size_t bb = five ? 176 : 144;
    const int qmax = five ? 31 : 15;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += bb, x += CK_QKK) {
        float scale[8], mins[8], maxs = 0, maxm = 0;
        for (int s = 0; s < 8; s++) {
            float lo, hi;
            range_with_zero(x + 32 * s, 32, &lo, &hi);
            scale[s] = (hi - lo) / (float)qmax;
            mins[s] = -lo;
            maxs = scale[s] > maxs ? scale[s] : maxs;
            maxm = mins[s] > maxm ? mins[s] : maxm;
        }
        uint16_t dh = ck_f32_to_f16(maxs / 63.0f), mh = ck_f32_to_f16(maxm / 63.0f);
        float d = ck_f16_to_f32(dh), dmin = ck_f16_to_f32(mh);
        uint8_t sc[8], m[8];
        for (int s = 0; s < 8; s++) {
            sc[s] = (uint8_t)(d > 0 ? clampi((int)lroundf(scale[s] / d), 0, 63) : 0);
            m[s] = (uint8_t)(dmin > 0 ? clampi((int)lroundf(mins[s] / dmin), 0, 63) : 0);
        }
        memset(b, 0, bb);
        wr16(b, dh);
        wr16(b + 2, mh);
        uint8_t *s12 = b + 4;
        for (int j = 0; j < 4; j++) {
            s12[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
            s12[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
            s12[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
        }
        uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
        for (int s = 0; s < 8; s++) {
            float ds = d * (float)sc[s], ms = dmin * (float)m[s], id = ds != 0 ? 1.0f / ds : 0.0f;
            for (int l = 0; l < 32; l++) {
                int q = clampi((int)lroundf((x[32 * s + l] + ms) * id), 0, qmax);
                qs[32 * (s / 2) + l] |= (uint8_t)((q & 15) << (4 * (s & 1)));
                if (five) qh[l] |= (uint8_t)((q >> 4) << s);
            }
        }
    }
}
void ck_q_q4_k_ref(const float *x, void *dst, int64_t n) { q_k45(x, dst, n, 0); }
void ck_q_q5_k_ref(const float *x, void *dst, int64_t n) { q_k45(x, dst, n, 1); }

// ---- Q6_K ----
// Value v = 128 h + 32 k + l (h, k < 2 / 4, l < 32): low 4 bits in ql[64 h + 32 (k & 1) + l]
// (low nibble for k < 2, high for k >= 2), top 2 bits at bits 2k..2k+1 of qh[32 h + l].

static inline int k6_quant(const uint8_t *ql, const uint8_t *qh, int v) {
    int h = v / 128, k = (v / 32) % 4, l = v % 32;
    int lo = ql[64 * h + 32 * (k & 1) + l];
    lo = k < 2 ? lo & 15 : lo >> 4;
    return lo | ((qh[32 * h + l] >> (2 * k)) & 3) << 4;
}

void ck_deq_q6_k_ref(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += 210, y += CK_QKK) {
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = ck_f16_to_f32(ck_rd16(b + 208));
        for (int v = 0; v < CK_QKK; v++) y[v] = d * (float)sc[v / 16] * (float)(k6_quant(b, b + 128, v) - 32);
    }
}

void ck_q_q6_k_ref(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / CK_QKK; i++, b += 210, x += CK_QKK) {
        float scale[16], maxs = 0;
        for (int g = 0; g < 16; g++) {
            float amax = 0;
            for (int l = 0; l < 16; l++) amax = fabsf(x[16 * g + l]) > amax ? fabsf(x[16 * g + l]) : amax;
            scale[g] = amax / 31.0f;
            maxs = scale[g] > maxs ? scale[g] : maxs;
        }
        uint16_t dh = ck_f32_to_f16(maxs / 127.0f);
        float d = ck_f16_to_f32(dh);
        memset(b, 0, 210);
        int8_t *sc = (int8_t *)(b + 192);
        for (int g = 0; g < 16; g++) sc[g] = (int8_t)(d > 0 ? clampi((int)lroundf(scale[g] / d), 0, 127) : 0);
        wr16(b + 208, dh);
        for (int v = 0; v < CK_QKK; v++) {
            float ds = d * (float)sc[v / 16];
            int q = ds != 0 ? clampi((int)lroundf(x[v] / ds), -32, 31) + 32 : 32;
            int h = v / 128, k = (v / 32) % 4, l = v % 32;
            b[64 * h + 32 * (k & 1) + l] |= (uint8_t)((q & 15) << (k < 2 ? 0 : 4));
            b[128 + 32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
        }
    }
}

// ---- K-quant activation rows: per 256 values, symmetric int8 (round half to even) ----
void ck_q8k_row_scalar(const float *x, int64_t cols, void *dst) {
    const int64_t nsb = cols / CK_QKK;
    int8_t *q = dst;
    float *dd = (float *)((uint8_t *)dst + cols);
    int16_t *bs = (int16_t *)(dd + nsb);
    for (int64_t b = 0; b < nsb; b++, x += CK_QKK, q += CK_QKK) {
        float amax = 0;
        for (int j = 0; j < CK_QKK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        for (int j = 0; j < CK_QKK; j++) {
            float v = nearbyintf(x[j] * id);
            v = v < -127 ? -127 : v > 127 ? 127 : v;
            q[j] = (int8_t)v;
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * g + l];
            bs[16 * b + g] = (int16_t)s;
        }
        dd[b] = d;
    }
}

// ---- Scalar products (row-major weights); the SIMD kernels' exact integer math ----

// ---- K-quant panels (layout in ck_kquants.h) ----

void ck_kp_pack(ck_type t, const uint8_t *src, int64_t rows, int64_t cols, uint8_t *dst) {
    const ck_kp_layout l = ck_kp_of(t);
    const int64_t nsb = cols / CK_QKK, panels = (rows + CK_PANEL - 1) / CK_PANEL;
    const size_t rb = ck_row_bytes(t, cols), bb = ck_row_bytes(t, CK_QKK);
    memset(dst, 0, (size_t)panels * ck_kp_panel_bytes(t, cols));  // padding rows: zero quants and scales
    for (int64_t p = 0; p < panels; p++)
        for (int r = 0; r < CK_PANEL && p * CK_PANEL + r < rows; r++)
            for (int64_t i = 0; i < nsb; i++) {
                const uint8_t *g = src + (size_t)(p * CK_PANEL + r) * rb + (size_t)i * bb;
                uint8_t *b = dst + (size_t)(p * nsb + i) * l.bytes;
                if (t == CK_Q3_K) {
                    // stored quant q + 4 (0..7) of GGUF value v: its two bits in qs, the third in hmask
                    for (int e = 0; e < CK_QKK; e++) {
                        const int q = k2_bits(g + 32, e) | k3_hbit(g, e) << 2, k = e / 32;
                        uint8_t *x = b + ((e / 4) & 7) * 32 + 4 * r + (e & 3);
                        if (k < 6) x[256 * (k / 2)] |= (uint8_t)(q << (3 * (k & 1)));
                        else {
                            x[k == 6 ? 0 : 512] |= (uint8_t)((q & 3) << 6);
                            x[256] |= (uint8_t)((q >> 2) << (k == 6 ? 6 : 7));
                        }
                    }
                    int8_t sc[16];
                    ck_q3k_scales(g + 96, sc);
                    for (int x = 0; x < 16; x++) b[l.sc + 16 * (x / 2) + 2 * r + (x & 1)] = (uint8_t)sc[x];
                    memcpy(b + l.d + 2 * r, g + 108, 2);
                } else if (t == CK_Q2_K) {
                    for (int n2 = 0; n2 < 2; n2++)
                        for (int s = 0; s < 8; s++) memcpy(b + (8 * n2 + s) * 32 + 4 * r, g + 16 + 32 * n2 + 4 * s, 4);
                    for (int x = 0; x < 16; x++) b[l.sc + 16 * (x / 2) + 2 * r + (x & 1)] = g[x];
                    memcpy(b + l.d + 2 * r, g + 80, 2);
                    memcpy(b + l.dmin + 2 * r, g + 82, 2);
                } else if (t == CK_Q6_K) {
                    const int8_t *sc = (const int8_t *)(g + 192);
                    for (int e = 0; e < CK_QKK; e++) {
                        const int q = k6_quant(g, g + 128, e), k = e / 64, h = (e / 32) & 1, s = (e / 4) & 7, ii = e & 3;
                        b[(8 * k + s) * 32 + 4 * r + ii] |= (uint8_t)((q & 15) << (4 * h));
                        b[1024 + (4 * k + s / 2) * 32 + 4 * r + ii] |= (uint8_t)((q >> 4) << (4 * (s & 1) + 2 * h));
                    }
                    for (int x = 0; x < 16; x++) b[l.sc + 16 * (x / 2) + 2 * r + (x & 1)] = (uint8_t)sc[x];
                    memcpy(b + l.d + 2 * r, g + 208, 2);
                } else {
                    const int five = t == CK_Q5_K;
                    const uint8_t *qs = g + (five ? 48 : 16);
                    uint8_t sc[8], m[8];
                    ck_kq_scales(g + 4, sc, m);
                    for (int k = 0; k < 4; k++)
                        for (int s = 0; s < 8; s++) memcpy(b + (8 * k + s) * 32 + 4 * r, qs + 32 * k + 4 * s, 4);
                    if (five)
                        for (int s = 0; s < 8; s++) memcpy(b + 1024 + s * 32 + 4 * r, g + 16 + 4 * s, 4);
                    for (int x = 0; x < 8; x++) {
                        b[l.sc + 16 * (x / 2) + 2 * r + (x & 1)] = sc[x];
                        b[l.mn + 16 * (x / 2) + 2 * r + (x & 1)] = m[x];
                    }
                    memcpy(b + l.d + 2 * r, g, 2);
                    memcpy(b + l.dmin + 2 * r, g + 2, 2);
                }
            }
}

// One panel row's product with one activation row, exactly in integers per super-block:
//   Q2_K / Q4_K / Q5_K: d da sum_g sc_g (q . a)_g  -  dmin da sum_g m_g bsum_g
//   Q3_K / Q6_K:        d da sum_g sc_g ((q . a)_g - o bsum_g)     (o = 4 / 32: quants are stored q + o)
// (bsum_g: the activation sums of sub-block g, one or two of the 16-sums.)
static float kp_dot(ck_type t, const uint8_t *P, int64_t nsb, int r, ck_q8k_row a) {
    const ck_kp_layout l = ck_kp_of(t);
    const int sub = ck_kp_sub(t), off = ck_kp_offset(t), mins = ck_kp_has_min(t);
    float s = 0, sm = 0;
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *b = P + (size_t)i * l.bytes;
        const int8_t *q = a.q + i * CK_QKK;
        const int16_t *bs = a.bsum + 16 * i;
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < CK_QKK / sub; g++) {
            int32_t p = 0, bsum = 0;
            for (int e = g * sub; e < (g + 1) * sub; e++) p += ck_kp_quant(t, b, r, e) * q[e];
            for (int x = g * sub / 16; x < (g + 1) * sub / 16; x++) bsum += bs[x];
            isum += ck_kp_scale(t, b, r, g, 0) * (p - off * bsum);
            if (mins) msum += ck_kp_scale(t, b, r, g, 1) * bsum;
        }
        s += ck_f16_to_f32(ck_rd16(b + l.d + 2 * r)) * a.d[i] * (float)isum;
        if (mins) sm += ck_f16_to_f32(ck_rd16(b + l.dmin + 2 * r)) * a.d[i] * (float)msum;
    }
    return s - sm;
}

void ck_mm_kp_scalar(ck_type t, const void *packed, int64_t rows, int64_t cols,
                     const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nsb = cols / CK_QKK;
    const size_t pbytes = ck_kp_panel_bytes(t, cols);
    for (int64_t p = r0 / CK_PANEL; p * CK_PANEL < r1; p++) {
        const uint8_t *P = (const uint8_t *)packed + (size_t)p * pbytes;
        for (int64_t j = 0; j < n; j++) {
            float acc[CK_PANEL];
            for (int r = 0; r < CK_PANEL; r++) acc[r] = kp_dot(t, P, nsb, r, ck_q8k_at(act, cols, j));
            ck_store_panel(y + j * ldy, acc, p * CK_PANEL, r0, r1);
        }
    }
}

// A panel row's super-block as f32, with the reference dequantizers' operations.
static void kp_dequant(ck_type t, const uint8_t *b, int r, float *y) {
    const ck_kp_layout l = ck_kp_of(t);
    const float d = ck_f16_to_f32(ck_rd16(b + l.d + 2 * r));
    const int sub = ck_kp_sub(t), off = ck_kp_offset(t);
    if (!ck_kp_has_min(t)) {  // Q3_K, Q6_K: (d sc) (q - o)
        for (int e = 0; e < CK_QKK; e++)
            y[e] = d * (float)ck_kp_scale(t, b, r, e / sub, 0) * (float)(ck_kp_quant(t, b, r, e) - off);
        return;
    }
    const float dmin = ck_f16_to_f32(ck_rd16(b + l.dmin + 2 * r));
    for (int g = 0; g < CK_QKK / sub; g++) {
        const float ds = d * (float)ck_kp_scale(t, b, r, g, 0), ms = dmin * (float)ck_kp_scale(t, b, r, g, 1);
        for (int e = sub * g; e < sub * g + sub; e++) y[e] = fmaf(ds, (float)ck_kp_quant(t, b, r, e), -ms);
    }
}

// f32 activations: each panel row dequantized once (ggml's numerics), then dotted with every
// activation row in f32 (8 partial sums).
void ck_mm_kp_f32act(ck_type t, const void *packed, int64_t rows, int64_t cols,
                     const float *x, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nsb = cols / CK_QKK;
    const size_t pbytes = ck_kp_panel_bytes(t, cols), bb = ck_kp_of(t).bytes;
    float stack[8192], *w = cols <= 8192 ? stack : malloc(sizeof(float) * (size_t)cols);
    if (!w) return;
    for (int64_t row = r0; row < r1; row++) {
        const uint8_t *P = (const uint8_t *)packed + (size_t)(row / CK_PANEL) * pbytes;
        for (int64_t i = 0; i < nsb; i++) kp_dequant(t, P + (size_t)i * bb, (int)(row % CK_PANEL), w + i * CK_QKK);
        for (int64_t j = 0; j < n; j++) {
            const float *xj = x + j * cols;
            float a[8] = {0};
            for (int64_t e = 0; e < cols; e += 8)
                for (int k = 0; k < 8; k++) a[k] += w[e + k] * xj[e + k];
            y[j * ldy + row] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        }
    }
    if (w != stack) free(w);
}
