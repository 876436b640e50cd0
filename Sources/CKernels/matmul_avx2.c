// AVX2 + FMA + F16C matrix kernels.
// Quantized: a tile is one 8-row panel x NR (<= 4) activation rows. A 32-byte load of the panel
// holds 4 consecutive bytes of each of the 8 rows (see ck_internal.h), so u8 x s8 products against
// a broadcast 4-byte activation group accumulate straight into "one lane per weight row": no
// horizontal sums, and the per-block scales of 8 rows are one vector.
// Float formats: row-major weights, tiles of MR (<= 4) rows x NR (<= 3) activation rows.
#include "ck_internal.h"
#include <immintrin.h>

#define ACT_CHUNK 64  // activation rows per pass: keeps the converted activations in L2

static CK_TARGET_AVX2 CK_ALWAYS_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Q4_0 / Q4_1: nibbles are u8 0..15, so maddubs (u8 x s8 -> pairs summed to i16) needs no sign
// trick; the 8 partial i16 sums of a block stay <= 8 * 2 * 15 * 127 = 30480, below 32767.
// Q5_0 / Q5_1: the fifth bits (transposed qh, ck_internal.h) are one shift and mask per chunk; with
// quants up to 31 only 4 maddubs fit in i16 (4 * 2 * 31 * 127 = 31496), so halves are widened apart.
static CK_TARGET_AVX2 CK_ALWAYS_INLINE void q4_tile(const ck_type t, const int NR, const uint8_t *P,
                                                      int64_t nb, const ck_qact_row *a, float *out) {
    const int five = ck_is_q5(t);
    const int64_t bb = (int64_t)ck_panel_block_bytes(t), doff = (int64_t)ck_panel_d_offset(t);
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1), b16 = _mm256_set1_epi8(16);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    __m256 accm[4];  // offset terms in their own chain: halves the FMA latency per block
    for (int j = 0; j < NR; j++) accm[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = P + b * bb;
        if (NR == 1) prefetch_block(w, bb);
        __m256i c0 = _mm256_loadu_si256((const __m256i *)w), c1 = _mm256_loadu_si256((const __m256i *)(w + 32));
        __m256i c2 = _mm256_loadu_si256((const __m256i *)(w + 64)), c3 = _mm256_loadu_si256((const __m256i *)(w + 96));
        __m256i l0 = _mm256_and_si256(c0, m4), h0 = _mm256_and_si256(_mm256_srli_epi16(c0, 4), m4);
        __m256i l1 = _mm256_and_si256(c1, m4), h1 = _mm256_and_si256(_mm256_srli_epi16(c1, 4), m4);
        __m256i l2 = _mm256_and_si256(c2, m4), h2 = _mm256_and_si256(_mm256_srli_epi16(c2, 4), m4);
        __m256i l3 = _mm256_and_si256(c3, m4), h3 = _mm256_and_si256(_mm256_srli_epi16(c3, 4), m4);
        if (five) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(w + 128));
            l0 = _mm256_or_si256(l0, _mm256_and_si256(_mm256_slli_epi32(qh, 4), b16));
            l1 = _mm256_or_si256(l1, _mm256_and_si256(_mm256_slli_epi32(qh, 3), b16));
            l2 = _mm256_or_si256(l2, _mm256_and_si256(_mm256_slli_epi32(qh, 2), b16));
            l3 = _mm256_or_si256(l3, _mm256_and_si256(_mm256_slli_epi32(qh, 1), b16));
            h0 = _mm256_or_si256(h0, _mm256_and_si256(qh, b16));
            h1 = _mm256_or_si256(h1, _mm256_and_si256(_mm256_srli_epi32(qh, 1), b16));
            h2 = _mm256_or_si256(h2, _mm256_and_si256(_mm256_srli_epi32(qh, 2), b16));
            h3 = _mm256_or_si256(h3, _mm256_and_si256(_mm256_srli_epi32(qh, 3), b16));
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + doff)));
        __m256 mw = ck_has_min(t) ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + doff + 16)))
                                  : _mm256_mul_ps(dw, _mm256_set1_ps(five ? -16.0f : -8.0f));
        for (int j = 0; j < NR; j++) {
            const int8_t *q = a[j].q + b * CK_QK;
            __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(l0, bcast4(q + 0)), _mm256_maddubs_epi16(l1, bcast4(q + 4)));
            __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(l2, bcast4(q + 8)), _mm256_maddubs_epi16(l3, bcast4(q + 12)));
            __m256i s2 = _mm256_add_epi16(_mm256_maddubs_epi16(h0, bcast4(q + 16)), _mm256_maddubs_epi16(h1, bcast4(q + 20)));
            __m256i s3 = _mm256_add_epi16(_mm256_maddubs_epi16(h2, bcast4(q + 24)), _mm256_maddubs_epi16(h3, bcast4(q + 28)));
            __m256 f;
            if (five) {
                f = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones),
                                                        _mm256_madd_epi16(_mm256_add_epi16(s2, s3), ones)));
            } else {
                __m256i s = _mm256_add_epi16(_mm256_add_epi16(s0, s1), _mm256_add_epi16(s2, s3));
                f = _mm256_cvtepi32_ps(_mm256_madd_epi16(s, ones));
            }
            acc[j] = _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_set1_ps(a[j].d[b])), acc[j]);
            accm[j] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a[j].s[b]), accm[j]);
        }
    }
    for (int j = 0; j < NR; j++) acc[j] = _mm256_add_ps(acc[j], accm[j]);
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

// Q8_0: signed weights; maddubs needs an unsigned operand, so use |w| and move w's sign onto the
// activation (|w| <= 128, |a| <= 127: pair sums stay below 32767).
static CK_TARGET_AVX2 CK_ALWAYS_INLINE void q8_tile(const int NR, const uint8_t *P, int64_t nb,
                                                      const ck_qact_row *a, float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = P + b * 272;
        if (NR == 1) prefetch_block(w, 272);
        __m256i is[4];
        for (int j = 0; j < NR; j++) is[j] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            __m256i wk = _mm256_loadu_si256((const __m256i *)(w + 32 * k));
            __m256i ak = _mm256_abs_epi8(wk);
            for (int j = 0; j < NR; j++) {
                __m256i p = _mm256_maddubs_epi16(ak, _mm256_sign_epi8(bcast4(a[j].q + b * CK_QK + 4 * k), wk));
                is[j] = _mm256_add_epi32(is[j], _mm256_madd_epi16(p, ones));
            }
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 256)));
        for (int j = 0; j < NR; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[j]), _mm256_mul_ps(dw, _mm256_set1_ps(a[j].d[b])), acc[j]);
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

static CK_TARGET_AVX2 void quant_tile(ck_type t, int nr, const uint8_t *P, int64_t nb, const ck_qact_row *a, float *out) {
#define CK_CASES(NR)                                              \
    case NR:                                                      \
        if (t == CK_Q8_0) q8_tile(NR, P, nb, a, out);             \
        else if (t == CK_Q4_1) q4_tile(CK_Q4_1, NR, P, nb, a, out); \
        else if (t == CK_Q5_0) q4_tile(CK_Q5_0, NR, P, nb, a, out); \
        else if (t == CK_Q5_1) q4_tile(CK_Q5_1, NR, P, nb, a, out); \
        else q4_tile(CK_Q4_0, NR, P, nb, a, out);                 \
        break;
    switch (nr) { CK_CASES(1) CK_CASES(2) CK_CASES(3) CK_CASES(4) }
#undef CK_CASES
}

CK_TARGET_AVX2 void ck_mm_quant_avx2(ck_type t, const void *packed, int64_t rows, int64_t cols,
                                     const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nb = cols / CK_QK;
    const size_t pbytes = ck_panel_bytes(t, cols);
    float out[4 * CK_PANEL];
    ck_qact_row a[4];
    for (int64_t jc = 0; jc < n; jc += ACT_CHUNK) {
        int64_t je = jc + ACT_CHUNK < n ? jc + ACT_CHUNK : n;
        for (int64_t p = r0 / CK_PANEL; p * CK_PANEL < r1; p++) {
            const uint8_t *P = (const uint8_t *)packed + (size_t)p * pbytes;
            for (int64_t j0 = jc; j0 < je; j0 += 4) {
                int nr = je - j0 < 4 ? (int)(je - j0) : 4;
                for (int j = 0; j < nr; j++) a[j] = ck_qact_at(act, cols, j0 + j);
                quant_tile(t, nr, P, nb, a, out);
                for (int j = 0; j < nr; j++) ck_store_panel(y + (j0 + j) * ldy, out + 8 * j, p * CK_PANEL, r0, r1);
            }
        }
    }
}

// ---- float formats ----

static CK_TARGET_AVX2 CK_ALWAYS_INLINE __m256 ld8(const ck_type t, const uint8_t *row, int64_t c) {
    if (t == CK_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * c)));
    if (t == CK_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * c))), 16));
    return _mm256_loadu_ps((const float *)(row + 4 * c));
}

static inline float ld1(ck_type t, const uint8_t *row, int64_t c) {
    uint16_t h;
    if (t == CK_F16) { memcpy(&h, row + 2 * c, 2); return ck_f16_to_f32(h); }
    if (t == CK_BF16) { memcpy(&h, row + 2 * c, 2); return ck_bf16_to_f32(h); }
    float f;
    memcpy(&f, row + 4 * c, 4);
    return f;
}

static CK_TARGET_AVX2 CK_ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static CK_TARGET_AVX2 CK_ALWAYS_INLINE void float_tile(const ck_type t, const int MR, const int NR,
                                                         const uint8_t *W, size_t rb, const float *x,
                                                         int64_t cols, float *y, int64_t ldy, int64_t r, int64_t j0) {
    __m256 acc[4][3];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 xv[3];
        for (int j = 0; j < NR; j++) xv[j] = _mm256_loadu_ps(x + (j0 + j) * cols + c);
        for (int i = 0; i < MR; i++) {
            __m256 w = ld8(t, W + (r + i) * rb, c);
            for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(w, xv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float s = hsum(acc[i][j]);
            for (int64_t cc = c; cc < cols; cc++) s += ld1(t, W + (r + i) * rb, cc) * x[(j0 + j) * cols + cc];
            y[(j0 + j) * ldy + r + i] = s;
        }
}

static CK_TARGET_AVX2 void float_tile_any(ck_type t, int mr, int nr, const uint8_t *W, size_t rb, const float *x,
                                          int64_t cols, float *y, int64_t ldy, int64_t r, int64_t j0) {
#define CK_T(MR, NR)                                                                         \
    if (mr == MR && nr == NR) {                                                              \
        if (t == CK_F16) float_tile(CK_F16, MR, NR, W, rb, x, cols, y, ldy, r, j0);         \
        else if (t == CK_BF16) float_tile(CK_BF16, MR, NR, W, rb, x, cols, y, ldy, r, j0);  \
        else float_tile(CK_F32, MR, NR, W, rb, x, cols, y, ldy, r, j0);                     \
        return;                                                                              \
    }
    CK_T(4, 3) CK_T(4, 2) CK_T(4, 1) CK_T(3, 3) CK_T(3, 2) CK_T(3, 1)
    CK_T(2, 3) CK_T(2, 2) CK_T(2, 1) CK_T(1, 3) CK_T(1, 2) CK_T(1, 1)
#undef CK_T
}

CK_TARGET_AVX2 void ck_mm_float_avx2(ck_type t, const void *packed, int64_t rows, int64_t cols,
                                     const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const size_t rb = ck_row_bytes(t, cols);
    const uint8_t *W = packed;
    for (int64_t jc = 0; jc < n; jc += ACT_CHUNK / 2) {
        int64_t je = jc + ACT_CHUNK / 2 < n ? jc + ACT_CHUNK / 2 : n;
        for (int64_t r = r0; r < r1; r += 4) {
            int mr = r1 - r < 4 ? (int)(r1 - r) : 4;
            for (int64_t j0 = jc; j0 < je; j0 += 3) {
                int nr = je - j0 < 3 ? (int)(je - j0) : 3;
                float_tile_any(t, mr, nr, W, rb, act, cols, y, ldy, r, j0);
            }
        }
    }
}
