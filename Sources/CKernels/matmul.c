// Matrix-product entry points: weight packing, activation conversion, ISA dispatch, reference.
#include "ck_kquants.h"
#include <stdlib.h>

size_t ck_packed_size(ck_type t, int64_t rows, int64_t cols) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return 0;
    if (!tr->quant_act) return ck_row_bytes(t, cols) * (size_t)rows;  // float formats: row-major copy
    int64_t panels = (rows + CK_PANEL - 1) / CK_PANEL;
    return (size_t)panels * (tr->kpanels ? ck_kp_panel_bytes(t, cols) : ck_panel_bytes(t, cols));
}

int64_t ck_row_granule(ck_type t) {
    const ck_traits *tr = ck_traits_of(t);
    return tr ? tr->granule : 1;
}

// Quantized formats: see the panel layout in ck_internal.h.
static void pack_quant(ck_type t, const uint8_t *src, int64_t rows, int64_t cols, uint8_t *dst) {
    const int64_t nb = cols / CK_QK;
    const size_t rb = ck_row_bytes(t, cols), bb = ck_traits_of(t)->block_bytes;
    const size_t qb = ck_panel_qbytes(t), pb = ck_panel_block_bytes(t), pbytes = ck_panel_bytes(t, cols);
    // offsets inside a GGUF block: qs, and qh for Q5_x (d first, then m for Q4_1 / Q5_1)
    const size_t hoff = ck_has_min(t) ? 4 : 2, qoff = hoff + (ck_is_q5(t) ? 4 : 0);
    const size_t doff = ck_panel_d_offset(t);
    const int64_t panels = (rows + CK_PANEL - 1) / CK_PANEL;
    for (int64_t p = 0; p < panels; p++) {
        uint8_t *P = dst + (size_t)p * pbytes;
        memset(P, 0, pbytes);  // padding rows of the last panel: zero quants and scales
        for (int r = 0; r < CK_PANEL && p * CK_PANEL + r < rows; r++) {
            const uint8_t *row = src + (size_t)(p * CK_PANEL + r) * rb;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + (size_t)b * bb;
                uint8_t *q = P + (size_t)b * pb;
                for (size_t k = 0; k < qb / 32; k++) memcpy(q + k * 32 + r * 4, blk + qoff + k * 4, 4);
                memcpy(q + doff + r * 2, blk, 2);                                   // d
                if (ck_has_min(t)) memcpy(q + doff + 16 + r * 2, blk + 2, 2);     // m
                if (ck_is_q5(t)) {
                    uint32_t qh;
                    memcpy(&qh, blk + hoff, 4);
                    qh = ck_q5_qh_transpose(qh);
                    memcpy(q + qb + r * 4, &qh, 4);
                }
            }
        }
    }
}

void ck_pack(ck_type t, const void *src, int64_t rows, int64_t cols, void *dst) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return;
    if (!tr->quant_act) memcpy(dst, src, ck_packed_size(t, rows, cols));
    else if (tr->kpanels) ck_kp_pack(t, src, rows, cols, dst);  // kquant_ref.c
    else pack_quant(t, src, rows, cols, dst);
}

size_t ck_act_row_bytes(ck_type t, int64_t cols) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return 0;
    switch (tr->quant_act) {
    case CK_ACT_Q8: return ck_qact_row_bytes(cols);
    case CK_ACT_Q8K: return ck_q8k_row_bytes(cols);
    default: return (size_t)cols * 4;
    }
}

int ck_act_format(ck_type t) {
    const ck_traits *tr = ck_traits_of(t);
    return tr ? tr->quant_act : 0;
}

void ck_convert_act(ck_type t, const float *x, int64_t n, int64_t cols, void *dst) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr || n <= 0) return;
    if (!tr->quant_act) { memcpy(dst, x, (size_t)(n * cols) * 4); return; }
    const int avx2 = ck_isa_current() >= CK_ISA_AVX2, k = tr->quant_act == CK_ACT_Q8K;
    ck_act_fn f = k ? (avx2 ? ck_q8k_row_avx2 : ck_q8k_row_scalar) : (avx2 ? ck_qact_row_avx2 : ck_qact_row_scalar);
    const size_t rb = ck_act_row_bytes(t, cols);
    const size_t used = k ? (size_t)cols + 36 * (size_t)(cols / CK_QKK) : (size_t)cols + 12 * (size_t)(cols / CK_QK);
    for (int64_t j = 0; j < n; j++) {
        uint8_t *row = (uint8_t *)dst + (size_t)j * rb;
        f(x + j * cols, cols, row);
        memset(row + used, 0, rb - used);  // deterministic padding
    }
}

void ck_matmul(ck_type t, const void *packed, int64_t rows, int64_t cols,
               const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return;
    if (r0 < 0) r0 = 0;
    if (r1 > rows) r1 = rows;
    if (r0 >= r1 || n <= 0 || cols <= 0) return;
    for (int i = (int)ck_isa_current(); i >= 0; i--)
        if (tr->matmul[i]) { tr->matmul[i](t, packed, rows, cols, act, n, y, ldy, r0, r1); return; }
}

// Reference: dequantize each row, f64 dot products with the f32 activations.
void ck_matmul_ref(ck_type t, const void *src, int64_t rows, int64_t cols,
                   const float *x, int64_t n, float *y, int64_t ldy) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return;
    float *w = malloc((size_t)cols * sizeof(float));
    if (!w) return;
    const size_t rb = ck_row_bytes(t, cols);
    for (int64_t r = 0; r < rows; r++) {
        tr->dequant_ref((const uint8_t *)src + (size_t)r * rb, w, cols);
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t c = 0; c < cols; c++) acc += (double)w[c] * x[j * cols + c];
            y[j * ldy + r] = (float)acc;
        }
    }
    free(w);
}
