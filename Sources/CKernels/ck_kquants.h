// Internal declarations for the Q5_0 / Q5_1 and K-quant (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) formats.
// GGUF block layouts (ggml's, byte for byte):
//   Q5_0 (32 values, 22 bytes): f16 d | u32 qh | u8 qs[16]            x = (q - 16) d
//   Q5_1 (32 values, 24 bytes): f16 d | f16 m | u32 qh | u8 qs[16]    x = q d + m
//        q = low nibble of qs[e] (e < 16) or high nibble of qs[e - 16], plus 16 * bit e of qh.
//   Q2_K (256 values, 84 bytes): u8 scales[16] | u8 qs[64] | f16 d | f16 dmin
//        16 sub-blocks of 16; scales[g] = sc | m << 4 (4 bits each); x = d sc q - dmin m, q 2 bits:
//        value v = 128 n + 32 j + l (n < 2, j < 4, l < 32) is bits 2j, 2j+1 of qs[32 n + l].
//   Q3_K (256 values, 110 bytes): u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d
//        16 sub-blocks of 16 with 6-bit scales u (ck_q3k_scales); x = d (u - 32) q, q = 2 low bits
//        (as Q2_K's, in qs) - 4 unless bit 4 n + j of hmask[l] is set: q in [-4, 3].
//   Q4_K (256 values, 144 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//   Q5_K (256 values, 176 bytes): f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
//        8 sub-blocks of 32 with 6-bit scale sc and min m (packed in scales[12], see ck_kq_scales);
//        x = d sc q - dmin m. Sub-blocks 2j, 2j+1 are the low / high nibbles of qs[32j..32j+31];
//        Q5_K's fifth bit of element l of sub-block s is bit s of qh[l].
//   Q6_K (256 values, 210 bytes): u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
//        16 sub-blocks of 16; x = d scales[e / 16] (q - 32), q 6 bits (layout in kquant_ref.c).
//
// Q5_0 / Q5_1 are repacked into the 8-row panels of Q4_x (ck_internal.h) and use its kernels and int8
// activation blocks (ck_qact_*). K-quants get panels of their own (below), and Q8_K-like activation rows:
// int8 per value, one f32 scale per 256 values and the sums of each 16 int8 values (bsum), which
// carry the min / offset terms: sum_e (q_e - o) a_e = sum_e q_e a_e - o * sum_e a_e.
//
// K-quant panels: rows in panels of CK_PANEL (8, the last zero-padded); a panel is its cols / 256
// super-blocks in order, each holding the 8 rows' super-blocks as 32-byte vectors whose 4-byte lane r
// belongs to row r, so one load feeds 8 rows and the per-row scales are vectors too.
// Q4_K, Q5_K, Q6_K: element e = 64 k + 32 h + 4 s + i (k < 4, h < 2, s < 8, i < 4) of row r:
//   quants  [0, 1024): low 4 bits in nibble h of byte (8 k + s) * 32 + 4 r + i
//   Q5_K    [1024, 1280): byte s * 32 + 4 r + i = GGUF qh[4 s + i] (bit 2 k + h: the fifth bit)
//   Q6_K    [1024, 1536): top 2 bits at bit 4 (s & 1) + 2 h of byte (4 k + s / 2) * 32 + 4 r + i
// Q2_K, Q3_K: element e = 128 n + 32 j + 4 s + i (n < 2, j < 4, s < 8, i < 4) of row r:
//   Q2_K    [0, 512): bits 2 j, 2 j + 1 of byte (8 n + s) * 32 + 4 r + i
//           (= GGUF qs[32 n + 4 s + i]: the quant bytes are GGUF's, 4 at a time)
//   Q3_K    [0, 768): three planes X = 0, 1, 2 of 256 bytes; the 8 elements k = 4 n + j of (s, r, i) share
//           byte x_X = X * 256 + s * 32 + 4 r + i of each plane, their 3-bit stored quants (0..7) as
//           k < 6: bits 3 (k & 1) .. 3 (k & 1) + 2 of x_(k / 2)     (a mask alone extracts them, times 1 or 8)
//           k = 6: low two bits at bits 6, 7 of x_0, third bit at bit 6 of x_1
//           k = 7: low two bits at bits 6, 7 of x_2, third bit at bit 7 of x_1
// Then for all:
//   scales  16 bytes per pair of sub-blocks p: byte 2 r + x = row r's scale of sub-block 2 p + x
//           (Q4_K / Q5_K: 4 pairs of u8 sub-blocks of 32; Q6_K: 8 pairs of i8 sub-blocks of 16;
//           Q2_K: 8 pairs of GGUF's scale bytes, scale in the low nibble, min in the high one;
//           Q3_K: 8 pairs of i8 u - 32)
//   mins    Q4_K / Q5_K: as the scales (4 pairs); Q2_K: in the scales' high nibbles
//   d       8 f16, then dmin (Q2_K / Q4_K / Q5_K): 8 f16
// Quants are stored unsigned: Q3_K's as q + 4 (0..7), Q6_K's as q + 32 (0..63).
// For Q4_K / Q5_K this is GGUF's element order (sub-block 2 k + h); Q2_K, Q3_K and Q6_K elements keep
// their GGUF positions e, only their bits move. Q2_K panels are exactly as large as the GGUF rows;
// Q3_K's unpacked scales add 32 bytes per 880 (its quants are as many bits as GGUF's, regrouped).
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

/// Unpacks the 16 six-bit scales of a Q3_K super-block, minus 32. Byte layout of s[12]: the low
/// nibble of u[g] is the low nibble of s[g] (g < 8) or the high nibble of s[g - 8]; its top two bits
/// are bits 2 (g / 4), 2 (g / 4) + 1 of s[8 + g % 4].
static inline void ck_q3k_scales(const uint8_t *s, int8_t sc[16]) {
    for (int g = 0; g < 16; g++) {
        const int lo = g < 8 ? s[g] & 15 : s[g - 8] >> 4, hi = (s[8 + (g & 3)] >> (2 * (g >> 2))) & 3;
        sc[g] = (int8_t)((lo | hi << 4) - 32);
    }
}

static inline uint16_t ck_rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Offsets inside a K-quant panel super-block (layout above).
typedef struct {
    size_t qh, sc, mn, d, dmin, bytes;
} ck_kp_layout;
static inline int ck_kp_small(ck_type t) { return t == CK_Q2_K || t == CK_Q3_K; }  // elements 128 n + 32 j + 4 s + i
static inline ck_kp_layout ck_kp_of(ck_type t) {
    ck_kp_layout l;
    if (t == CK_Q2_K) {
        l.qh = 0; l.sc = 512; l.mn = 512; l.d = 640; l.dmin = 656; l.bytes = 672;
    } else if (t == CK_Q3_K) {
        l.qh = 0; l.sc = 768; l.mn = 0; l.d = 896; l.dmin = 0; l.bytes = 912;
    } else if (t == CK_Q6_K) {
        l.qh = 1024; l.sc = 1536; l.mn = 0; l.d = 1664; l.dmin = 0; l.bytes = 1680;
    } else {
        const size_t q = t == CK_Q5_K ? 1280 : 1024;
        l.qh = 1024; l.sc = q; l.mn = q + 64; l.d = q + 128; l.dmin = q + 144; l.bytes = q + 160;
    }
    return l;
}
static inline size_t ck_kp_panel_bytes(ck_type t, int64_t cols) { return (size_t)(cols / CK_QKK) * ck_kp_of(t).bytes; }

/// Quant (unsigned: 0..3, 0..7, 0..15, 0..31 or 0..63) of element e of row r in a panel super-block.
static inline int ck_kp_quant(ck_type t, const uint8_t *b, int r, int e) {
    if (t == CK_Q3_K) {
        const int k = e / 32, o = ((e / 4) & 7) * 32 + 4 * r + (e & 3);  // k = 4 n + j
        const uint8_t *x = b + o;
        if (k < 6) return (x[256 * (k / 2)] >> (3 * (k & 1))) & 7;
        return x[k == 6 ? 0 : 512] >> 6 | ((x[256] >> (k == 6 ? 6 : 7)) & 1) << 2;
    }
    if (t == CK_Q2_K) {
        const int n = e / 128, j = (e / 32) & 3, s = (e / 4) & 7, i = e & 3;
        return (b[(8 * n + s) * 32 + 4 * r + i] >> (2 * j)) & 3;
    }
    const int k = e / 64, h = (e / 32) & 1, s = (e / 4) & 7, i = e & 3;
    int q = (b[(8 * k + s) * 32 + 4 * r + i] >> (4 * h)) & 15;
    if (t == CK_Q5_K) q |= ((b[1024 + s * 32 + 4 * r + i] >> (2 * k + h)) & 1) << 4;
    if (t == CK_Q6_K) q |= ((b[1024 + (4 * k + s / 2) * 32 + 4 * r + i] >> (4 * (s & 1) + 2 * h)) & 3) << 4;
    return q;
}
/// Scale of sub-block g (of 32 values for Q4_K / Q5_K, 16 for the others) of row r; the min with mins = 1.
static inline int ck_kp_scale(ck_type t, const uint8_t *b, int r, int g, int mins) {
    const ck_kp_layout l = ck_kp_of(t);
    const uint8_t v = b[(mins ? l.mn : l.sc) + 16 * (g / 2) + 2 * r + (g & 1)];
    if (t == CK_Q2_K) return mins ? v >> 4 : v & 15;
    return t == CK_Q6_K || t == CK_Q3_K ? (int)(int8_t)v : (int)v;
}
/// Sub-block size (values per scale), the offset subtracted from the stored quants, and whether
/// there are mins, per K-quant.
static inline int ck_kp_sub(ck_type t) { return t == CK_Q4_K || t == CK_Q5_K ? 32 : 16; }
static inline int ck_kp_offset(ck_type t) { return t == CK_Q6_K ? 32 : t == CK_Q3_K ? 4 : 0; }
static inline int ck_kp_has_min(ck_type t) { return t == CK_Q2_K || t == CK_Q4_K || t == CK_Q5_K; }

// Reference row conversions (kquant_ref.c).
void ck_deq_q5_0_ref(const void *s, float *d, int64_t n);
void ck_deq_q5_1_ref(const void *s, float *d, int64_t n);
void ck_deq_q2_k_ref(const void *s, float *d, int64_t n);
void ck_deq_q3_k_ref(const void *s, float *d, int64_t n);
void ck_deq_q4_k_ref(const void *s, float *d, int64_t n);
void ck_deq_q5_k_ref(const void *s, float *d, int64_t n);
void ck_deq_q6_k_ref(const void *s, float *d, int64_t n);
void ck_q_q5_0_ref(const float *s, void *d, int64_t n);
void ck_q_q5_1_ref(const float *s, void *d, int64_t n);
void ck_q_q2_k_ref(const float *s, void *d, int64_t n);
void ck_q_q3_k_ref(const float *s, void *d, int64_t n);
void ck_q_q4_k_ref(const float *s, void *d, int64_t n);
void ck_q_q5_k_ref(const float *s, void *d, int64_t n);
void ck_q_q6_k_ref(const float *s, void *d, int64_t n);

// K-quant activation rows (scalar: kquant_ref.c, AVX2: kquant_avx2.c; identical bytes).
void ck_q8k_row_scalar(const float *x, int64_t cols, void *dst);
void ck_q8k_row_avx2(const float *x, int64_t cols, void *dst);

/// Packs GGUF rows into K-quant panels (ck_kp_panel_bytes per 8 rows).
void ck_kp_pack(ck_type t, const uint8_t *src, int64_t rows, int64_t cols, uint8_t *dst);

// K-quant panel kernels: scalar reference twin, AVX2, AVX-512 VNNI (and its AVX2 emulation).
void ck_mm_kp_scalar(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_kp_avx2(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_kp_vnni(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_kp_vnni_emulated(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
/// f32 activations: each panel row dequantized per super-block (ggml's numerics) and dotted in f32.
void ck_mm_kp_f32act(ck_type, const void *, int64_t, int64_t, const float *, int64_t, float *, int64_t, int64_t, int64_t);

#endif
