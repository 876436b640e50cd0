// Internal declarations for the Q5_0 / Q5_1 and K-quant (Q4_K, Q5_K, Q6_K) formats.
// GGUF block layouts (ggml's, byte for byte):
//   Q5_0 (32 values, 22 bytes): f16 d | u32 qh | u8 qs[16]            x = (q - 16) d
//   Q5_1 (32 values, 24 bytes): f16 d | f16 m | u32 qh | u8 qs[16]    x = q d + m
//        q = low nibble of qs[e] (e < 16) or high nibble of qs[e - 16], plus 16 * bit e of qh.
//   Q4_K (256 values, 144 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//   Q5_K (256 values, 176 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
//        8 sub-blocks of 32 with 6-bit scale sc and min m (packed in scales[12], see ck_kq_scales);
//        x = d sc q - dmin m. Sub-blocks 2j, 2j+1 are the low / high nibbles of qs[32j..32j+31];
//        Q5_K's fifth bit of element l of sub-block s is bit s of qh[l].
//   Q6_K (256 values, 210 bytes): u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
//        16 sub-blocks of 16; x = d scales[e / 16] (q - 32), q 6 bits (layout in kquant_ref.c).
//
// Q5_0 / Q5_1 are repacked into the 8-row panels of Q4_x (ck_internal.h) and use its kernels and int8
// activation blocks (ck_qact_*). K-quants are not repacked: weights stay in GGUF row-major layout
// (ck_pack copies), and a kernel dots one weight row with up to 4 activation rows, decoding each
// weight block once. K-quants use Q8_K-like activation rows:
// int8 per value, one f32 scale per 256 values and the sums of each 16 int8 values (bsum), which
// carry the min / offset terms: sum_e (q_e - o) a_e = sum_e q_e a_e - o * sum_e a_e.
#ifndef CK_KQUANTS_H
#define CK_KQUANTS_H

#include "ck_internal.h"

#define CK_QKK 256  // values per K-quant super-block

// ---- Activation layout for K-quant weights ------------------------------------------------------
// One row of `cols` values: int8 q[cols] | f32 d[nsb] | i16 bsum[16 * nsb], padded to 32 bytes.
static inline size_t ck_q8k_row_bytes(int64_t cols) {
    int64_t nsb = cols / CK_QKK;
    size_t b = (size_t)cols + 4 * (size_t)nsb + 32 * (size_t)nsb;
    return (b + 31) & ~(size_t)31;
}
typedef struct {
    const int8_t *q;
    const float *d;
    const int16_t *bsum;
} ck_q8k_row;
static inline ck_q8k_row ck_q8k_at(const void *act, int64_t cols, int64_t j) {
    const uint8_t *p = (const uint8_t *)act + (size_t)j * ck_q8k_row_bytes(cols);
    ck_q8k_row r;
    r.q = (const int8_t *)p;
    r.d = (const float *)(p + cols);
    r.bsum = (const int16_t *)(r.d + cols / CK_QKK);
    return r;
}

/// Unpacks the 8 six-bit scales and mins of a Q4_K / Q5_K super-block. Byte layout of s[12]:
/// s[j] = sc[j] | sc[j+4] >> 4 << 6, s[j+4] = m[j] | m[j+4] >> 4 << 6, s[j+8] = sc[j+4] & 15 | (m[j+4] & 15) << 4
/// for j < 4. Done four bytes at a time.
static inline void ck_kq_scales(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4);
    memcpy(&w1, s + 4, 4);
    memcpy(&w2, s + 8, 4);
    uint32_t a = w0 & 0x3f3f3f3fu, b = w1 & 0x3f3f3f3fu;
    uint32_t c = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    uint32_t e = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    memcpy(sc, &a, 4);
    memcpy(sc + 4, &c, 4);
    memcpy(m, &b, 4);
    memcpy(m + 4, &e, 4);
}

static inline uint16_t ck_rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Reference row conversions (kquant_ref.c).
void ck_deq_q5_0_ref(const void *s, float *d, int64_t n);
void ck_deq_q5_1_ref(const void *s, float *d, int64_t n);
void ck_deq_q4_k_ref(const void *s, float *d, int64_t n);
void ck_deq_q5_k_ref(const void *s, float *d, int64_t n);
void ck_deq_q6_k_ref(const void *s, float *d, int64_t n);
void ck_q_q5_0_ref(const float *s, void *d, int64_t n);
void ck_q_q5_1_ref(const float *s, void *d, int64_t n);
void ck_q_q4_k_ref(const float *s, void *d, int64_t n);
void ck_q_q5_k_ref(const float *s, void *d, int64_t n);
void ck_q_q6_k_ref(const float *s, void *d, int64_t n);

// K-quant activation rows (scalar: kquant_ref.c, AVX2: kquant_avx2.c; identical bytes).
void ck_q8k_row_scalar(const float *x, int64_t cols, void *dst);
void ck_q8k_row_avx2(const float *x, int64_t cols, void *dst);

// Row-major K-quant kernels: scalar reference twin, AVX2, AVX-512 VNNI.
void ck_mm_rows_scalar(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_rows_avx2(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_rows_vnni(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_rows_vnni_emulated(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
/// f32 activations: each weight block dequantized (ck_dequantize_row) and dotted in f32.
void ck_mm_rows_f32act(ck_type, const void *, int64_t, int64_t, const float *, int64_t, float *, int64_t, int64_t, int64_t);

#endif
