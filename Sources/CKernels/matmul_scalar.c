// Portable kernels: the fallback path, and the exact statement of the quantized-activation math
// that the SIMD paths must reproduce (up to float summation order).
#include "ck_internal.h"

static inline float ld_weight(ck_type t, const uint8_t *row, int64_t c) {
    uint16_t h;
    switch (t) {
    case CK_F16: memcpy(&h, row + 2 * c, 2); return ck_f16_to_f32(h);
    case CK_BF16: memcpy(&h, row + 2 * c, 2); return ck_bf16_to_f32(h);
    default: { float f; memcpy(&f, row + 4 * c, 4); return f; }
    }
}

// F32/F16/BF16 weights in row-major (GGUF) layout, f32 activations.
void ck_mm_float_scalar(ck_type t, const void *packed, int64_t rows, int64_t cols,
                        const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const size_t rb = ck_row_bytes(t, cols);
    const float *x = act;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)packed + (size_t)r * rb;
        for (int64_t j = 0; j < n; j++) {
            const float *xj = x + j * cols;
            float acc[8] = {0};  // 8 partial sums: shorter dependency chains, smaller rounding error
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8)
                for (int i = 0; i < 8; i++) acc[i] += ld_weight(t, row, c + i) * xj[c + i];
            for (; c < cols; c++) acc[0] += ld_weight(t, row, c) * xj[c];
            y[j * ldy + r] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        }
    }
}

// Integer dot product of one panel row's block with an activation block.
static inline int32_t block_dot(ck_type t, const uint8_t *q, int r, const int8_t *a) {
    int32_t s = 0;
    if (t == CK_Q8_0) {
        for (int k = 0; k < 8; k++)
            for (int i = 0; i < 4; i++) s += (int8_t)q[k * 32 + r * 4 + i] * a[4 * k + i];
    } else {
        uint32_t qh = 0;  // Q5_x: transposed fifth bits (ck_internal.h)
        if (ck_is_q5(t)) memcpy(&qh, q + 128 + r * 4, 4);
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 4; i++) {
                uint8_t v = q[c * 32 + r * 4 + i];
                int lo = (v & 15) | ((qh >> (8 * i + c)) & 1) << 4, hi = (v >> 4) | ((qh >> (8 * i + 4 + c)) & 1) << 4;
                s += lo * a[4 * c + i] + hi * a[16 + 4 * c + i];
            }
    }
    return s;
}

// Quantized weights (panel layout) x int8 activations:
//   y = sum_b (dw * da) * isum  +  sum_b mw * s      with mw = m (Q4_1, Q5_1), -8 dw (Q4_0), -16 dw (Q5_0), 0 (Q8_0)
void ck_mm_quant_scalar(ck_type t, const void *packed, int64_t rows, int64_t cols,
                        const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nb = cols / CK_QK;
    const size_t qb = ck_panel_d_offset(t), pb = ck_panel_block_bytes(t), pbytes = ck_panel_bytes(t, cols);
    for (int64_t p = r0 / CK_PANEL; p * CK_PANEL < r1; p++) {
        const uint8_t *P = (const uint8_t *)packed + (size_t)p * pbytes;
        for (int64_t j = 0; j < n; j++) {
            ck_qact_row a = ck_qact_at(act, cols, j);
            float acc[CK_PANEL];
            for (int r = 0; r < CK_PANEL; r++) {
                float s = 0, sm = 0;  // scale and offset terms summed apart, as the SIMD paths
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = P + (size_t)b * pb;
                    const uint16_t *dh = (const uint16_t *)(blk + qb), *mh = dh + 8;
                    float dw = ck_f16_to_f32(dh[r]);
                    int32_t isum = block_dot(t, blk, r, a.q + b * CK_QK);
                    s += dw * a.d[b] * (float)isum;
                    if (ck_has_min(t)) sm += ck_f16_to_f32(mh[r]) * a.s[b];
                    else if (t == CK_Q4_0) sm += (-8.0f * dw) * a.s[b];
                    else if (t == CK_Q5_0) sm += (-16.0f * dw) * a.s[b];
                }
                acc[r] = s + sm;
            }
            ck_store_panel(y + j * ldy, acc, p * CK_PANEL, r0, r1);
        }
    }
}
