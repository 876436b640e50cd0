// Scalar reference for Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (layouts in ck_kquants.h): dequantization
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
            float lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo = x[32 * s + l] < lo ? x[32 * s + l] : lo;
                hi = x[32 * s + l] > hi ? x[32 * s + l] : hi;
            }
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

// Q4_K / Q5_K: sum_s sc_s (q . a)_s times d da, minus dmin da sum_s m_s (bsums of s).
static float dot_k45(const uint8_t *w, int64_t cols, ck_q8k_row a, int five) {
    const size_t bb = five ? 176 : 144;
    float s = 0, sm = 0;
    for (int64_t i = 0; i < cols / CK_QKK; i++, w += bb) {
        uint8_t sc[8], m[8];
        ck_kq_scales(w + 4, sc, m);
        const uint8_t *qh = five ? w + 16 : NULL, *qs = w + (five ? 48 : 16);
        const int8_t *q = a.q + i * CK_QKK;
        const int16_t *bs = a.bsum + 16 * i;
        int32_t isum = 0, msum = 0;
        for (int k = 0; k < 8; k++) {
            int32_t p = 0;
            for (int l = 0; l < 32; l++) p += k45_quant(qs, qh, k, l) * q[32 * k + l];
            isum += (int32_t)sc[k] * p;
            msum += (int32_t)m[k] * (bs[2 * k] + bs[2 * k + 1]);
        }
        s += ck_f16_to_f32(ck_rd16(w)) * a.d[i] * (float)isum;
        sm += ck_f16_to_f32(ck_rd16(w + 2)) * a.d[i] * (float)msum;
    }
    return s - sm;
}

// Q6_K: d da sum_g sc_g ((q . a)_g - 32 bsum_g), all in integers per super-block.
static float dot_k6(const uint8_t *w, int64_t cols, ck_q8k_row a) {
    float s = 0;
    for (int64_t i = 0; i < cols / CK_QKK; i++, w += 210) {
        const int8_t *sc = (const int8_t *)(w + 192);
        const int8_t *q = a.q + i * CK_QKK;
        const int16_t *bs = a.bsum + 16 * i;
        int32_t isum = 0;
        for (int g = 0; g < 16; g++) {
            int32_t p = 0;
            for (int l = 0; l < 16; l++) p += k6_quant(w, w + 128, 16 * g + l) * q[16 * g + l];
            isum += (int32_t)sc[g] * (p - 32 * bs[g]);
        }
        s += ck_f16_to_f32(ck_rd16(w + 208)) * a.d[i] * (float)isum;
    }
    return s;
}

void ck_mm_rows_scalar(ck_type t, const void *packed, int64_t rows, int64_t cols,
                       const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const size_t rb = ck_row_bytes(t, cols);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)packed + (size_t)r * rb;
        for (int64_t j = 0; j < n; j++) {
            float v = 0;
            switch (t) {
            case CK_Q4_K: v = dot_k45(w, cols, ck_q8k_at(act, cols, j), 0); break;
            case CK_Q5_K: v = dot_k45(w, cols, ck_q8k_at(act, cols, j), 1); break;
            case CK_Q6_K: v = dot_k6(w, cols, ck_q8k_at(act, cols, j)); break;
            default: break;
            }
            y[j * ldy + r] = v;
        }
    }
}

// ---- f32 activations: dequantize a stretch of the row once per 4 activation rows, dot in f32 ----
void ck_mm_rows_f32act(ck_type t, const void *packed, int64_t rows, int64_t cols,
                       const float *x, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    enum { SPAN = 256 };
    const int64_t be = ck_block_elements(t);
    const size_t rb = ck_row_bytes(t, cols), bb = ck_row_bytes(t, be);
    float w[SPAN];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)packed + (size_t)r * rb;
        for (int64_t j0 = 0; j0 < n; j0 += 4) {
            const int nr = n - j0 < 4 ? (int)(n - j0) : 4;
            float acc[4][8] = {{0}};
            for (int64_t c = 0; c < cols; c += SPAN) {
                const int64_t len = cols - c < SPAN ? cols - c : SPAN;  // a multiple of the block size
                ck_dequantize_row(t, row + (size_t)(c / be) * bb, w, len);
                for (int j = 0; j < nr; j++) {
                    const float *xj = x + (j0 + j) * cols + c;
                    for (int64_t e = 0; e < len; e += 8)
                        for (int k = 0; k < 8; k++) acc[j][k] += w[e + k] * xj[e + k];
                }
            }
            for (int j = 0; j < nr; j++) {
                const float *a = acc[j];
                y[(j0 + j) * ldy + r] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
            }
        }
    }
}
