// Per-format traits table and the public type-info / row-conversion entry points.
// A new format (e.g. a K-quant) is one row here plus its functions.
#include "ck_kquants.h"

static const ck_traits k_traits[] = {
    {CK_F32, 1, 4, 0, 1, ck_deq_f32_ref, ck_q_f32_ref,
     {0, 0, 0}, {ck_mm_float_scalar, ck_mm_float_avx2, 0}},
    {CK_F16, 1, 2, 0, 1, ck_deq_f16_ref, ck_q_f16_ref,
     {0, ck_deq_f16_avx2, 0}, {ck_mm_float_scalar, ck_mm_float_avx2, 0}},
    {CK_BF16, 1, 2, 0, 1, ck_deq_bf16_ref, ck_q_bf16_ref,
     {0, ck_deq_bf16_avx2, 0}, {ck_mm_float_scalar, ck_mm_float_avx2, 0}},
    {CK_Q4_0, CK_QK, 18, 1, CK_PANEL, ck_deq_q4_0_ref, ck_q_q4_0_ref,
     {0, ck_deq_q4_0_avx2, 0}, {ck_mm_quant_scalar, ck_mm_quant_avx2, ck_mm_quant_vnni}},
    {CK_Q4_1, CK_QK, 20, 1, CK_PANEL, ck_deq_q4_1_ref, ck_q_q4_1_ref,
     {0, ck_deq_q4_1_avx2, 0}, {ck_mm_quant_scalar, ck_mm_quant_avx2, ck_mm_quant_vnni}},
    {CK_Q8_0, CK_QK, 34, 1, CK_PANEL, ck_deq_q8_0_ref, ck_q_q8_0_ref,
     {0, ck_deq_q8_0_avx2, 0}, {ck_mm_quant_scalar, ck_mm_quant_avx2, ck_mm_quant_vnni}},
    {CK_Q5_0, CK_QK, 22, CK_ACT_Q8, CK_PANEL, ck_deq_q5_0_ref, ck_q_q5_0_ref,
     {0, 0, 0}, {ck_mm_quant_scalar, ck_mm_quant_avx2, ck_mm_quant_vnni}},
    {CK_Q5_1, CK_QK, 24, CK_ACT_Q8, CK_PANEL, ck_deq_q5_1_ref, ck_q_q5_1_ref,
     {0, 0, 0}, {ck_mm_quant_scalar, ck_mm_quant_avx2, ck_mm_quant_vnni}},
    // K-quants: their own panels (ck_kquants.h).
    {CK_Q2_K, CK_QKK, 84, CK_ACT_Q8K, CK_PANEL, ck_deq_q2_k_ref, ck_q_q2_k_ref,
     {0, 0, 0}, {ck_mm_kp_scalar, ck_mm_kp_avx2, ck_mm_kp_vnni}, 1},
    {CK_Q3_K, CK_QKK, 110, CK_ACT_Q8K, CK_PANEL, ck_deq_q3_k_ref, ck_q_q3_k_ref,
     {0, 0, 0}, {ck_mm_kp_scalar, ck_mm_kp_avx2, ck_mm_kp_vnni}, 1},
    {CK_Q4_K, CK_QKK, 144, CK_ACT_Q8K, CK_PANEL, ck_deq_q4_k_ref, ck_q_q4_k_ref,
     {0, 0, 0}, {ck_mm_kp_scalar, ck_mm_kp_avx2, ck_mm_kp_vnni}, 1},
    {CK_Q5_K, CK_QKK, 176, CK_ACT_Q8K, CK_PANEL, ck_deq_q5_k_ref, ck_q_q5_k_ref,
     {0, 0, 0}, {ck_mm_kp_scalar, ck_mm_kp_avx2, ck_mm_kp_vnni}, 1},
    {CK_Q6_K, CK_QKK, 210, CK_ACT_Q8K, CK_PANEL, ck_deq_q6_k_ref, ck_q_q6_k_ref,
     {0, 0, 0}, {ck_mm_kp_scalar, ck_mm_kp_avx2, ck_mm_kp_vnni}, 1},
};

const ck_traits *ck_traits_of(ck_type t) {
    for (size_t i = 0; i < sizeof k_traits / sizeof k_traits[0]; i++)
        if (k_traits[i].type == t) return &k_traits[i];
    return NULL;
}

int ck_type_supported(int t) { return ck_traits_of((ck_type)t) != NULL; }

int64_t ck_block_elements(ck_type t) {
    const ck_traits *tr = ck_traits_of(t);
    return tr ? tr->block : 0;
}

size_t ck_row_bytes(ck_type t, int64_t cols) {
    const ck_traits *tr = ck_traits_of(t);
    return tr ? (size_t)(cols / tr->block) * tr->block_bytes : 0;
}

void ck_dequantize_row_ref(ck_type t, const void *src, float *dst, int64_t n) {
    const ck_traits *tr = ck_traits_of(t);
    if (tr) tr->dequant_ref(src, dst, n);
}

void ck_dequantize_row(ck_type t, const void *src, float *dst, int64_t n) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return;
    for (int i = (int)ck_isa_current(); i >= 0; i--)
        if (tr->dequant[i]) { tr->dequant[i](src, dst, n); return; }
    tr->dequant_ref(src, dst, n);
}

void ck_quantize_row_ref(ck_type t, const float *src, void *dst, int64_t n) {
    const ck_traits *tr = ck_traits_of(t);
    if (tr) tr->quant_ref(src, dst, n);
}
