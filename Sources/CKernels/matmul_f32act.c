// Quantized weights (packed panels) x f32 activations: the exact product ck_matmul_ref states,
// without quantizing the activations to int8 blocks. Slower than the int8 paths, but a small
// change of the input stays a small change of the output (no int8 rounding boundary to cross),
// which is what lets a split model reproduce the full model with f16 transfers.
//
// Per block b of a row: sum_e w_e x_e = d * sum_e q_e x_e + m * sum_e x_e, with
// m = the Q4_1 / Q5_1 offset, -8 d for Q4_0, -16 d for Q5_0 and 0 for Q8_0 (the same terms as the int8 paths).
#include "ck_kquants.h"
#include <immintrin.h>

// The quant of element e (0..31) of panel row r in a packed block (layout in ck_internal.h).
static inline int32_t panel_quant(ck_type t, const uint8_t *q, int r, int e) {
    if (t == CK_Q8_0) return (int8_t)q[(e / 4) * 32 + r * 4 + e % 4];
    int k = e % 16, v = q[(k / 4) * 32 + r * 4 + k % 4];
    int h = 0;
    if (ck_is_q5(t)) {  // transposed fifth bits (ck_internal.h)
        uint32_t qh;
        memcpy(&qh, q + 128 + r * 4, 4);
        h = (int)((qh >> (8 * (k % 4) + (e < 16 ? 0 : 4) + k / 4)) & 1) << 4;
    }
    return (e < 16 ? (v & 15) : (v >> 4)) | h;
}

static inline float block_offset(ck_type t, const uint16_t *dh, const uint16_t *mh, int r) {
    if (ck_has_min(t)) return ck_f16_to_f32(mh[r]);
    if (t == CK_Q4_0) return -8.0f * ck_f16_to_f32(dh[r]);
    if (t == CK_Q5_0) return -16.0f * ck_f16_to_f32(dh[r]);
    return 0.0f;
}

void ck_mm_quant_f32act_scalar(ck_type t, const void *packed, int64_t rows, int64_t cols,
                               const float *x, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nb = cols / CK_QK;
    const size_t qb = ck_panel_d_offset(t), pb = ck_panel_block_bytes(t), pbytes = ck_panel_bytes(t, cols);
    for (int64_t p = r0 / CK_PANEL; p * CK_PANEL < r1; p++) {
        const uint8_t *P = (const uint8_t *)packed + (size_t)p * pbytes;
        for (int64_t j = 0; j < n; j++) {
            const float *xj = x + j * cols;
            float acc[CK_PANEL];
            for (int r = 0; r < CK_PANEL; r++) {
                float s = 0;
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = P + (size_t)b * pb;
                    const uint16_t *dh = (const uint16_t *)(blk + qb), *mh = dh + 8;
                    const float *xb = xj + b * CK_QK;
                    float qs = 0, xs = 0;
                    for (int e = 0; e < CK_QK; e++) {
                        qs += (float)panel_quant(t, blk, r, e) * xb[e];
                        xs += xb[e];
                    }
                    s += ck_f16_to_f32(dh[r]) * qs + block_offset(t, dh, mh, r) * xs;
                }
                acc[r] = s;
            }
            ck_store_panel(y + j * ldy, acc, p * CK_PANEL, r0, r1);
        }
    }
}

// AVX2: the 8 rows of a panel are the 8 lanes. A 32-byte chunk holds 4 consecutive quant bytes of
// every row, so shifting each lane by 8i (and masking) gives element i of all 8 rows at once.
static CK_TARGET_AVX2 CK_ALWAYS_INLINE __m256 lane_quants(ck_type t, __m256i chunk, int shift) {
    if (t == CK_Q8_0)  // sign-extend byte shift/8 of each lane
        return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(chunk, 24 - shift), 24));
    return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(chunk, shift), _mm256_set1_epi32(15)));
}

// One panel against NR activation rows; out[8 j + r] = row r's product with activation row j.
static CK_TARGET_AVX2 CK_ALWAYS_INLINE void f32act_tile(ck_type t, const int NR, const uint8_t *P, int64_t nb,
                                                        const float *const *xs, float *out) {
    const size_t qb = ck_panel_d_offset(t), pb = ck_panel_block_bytes(t);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = P + (size_t)b * pb;
        if (NR == 1) prefetch_block(w, (int64_t)pb);
        __m256 qs[4];
        float xsum[4];
        for (int j = 0; j < NR; j++) {
            qs[j] = _mm256_setzero_ps();
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(xs[j] + b * CK_QK), _mm256_loadu_ps(xs[j] + b * CK_QK + 8));
            v = _mm256_add_ps(v, _mm256_add_ps(_mm256_loadu_ps(xs[j] + b * CK_QK + 16), _mm256_loadu_ps(xs[j] + b * CK_QK + 24)));
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            xsum[j] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
        }
        if (t == CK_Q8_0) {
            for (int k = 0; k < 8; k++) {
                __m256i c = _mm256_loadu_si256((const __m256i *)(w + 32 * k));
                for (int i = 0; i < 4; i++) {
                    __m256 q = lane_quants(t, c, 8 * i);
                    for (int j = 0; j < NR; j++)
                        qs[j] = _mm256_fmadd_ps(q, _mm256_broadcast_ss(xs[j] + b * CK_QK + 4 * k + i), qs[j]);
                }
            }
        } else {
            const __m256i qh = ck_is_q5(t) ? _mm256_loadu_si256((const __m256i *)(w + 128)) : _mm256_setzero_si256();
            for (int k = 0; k < 4; k++) {
                __m256i c = _mm256_loadu_si256((const __m256i *)(w + 32 * k));
                for (int i = 0; i < 4; i++) {
                    __m256 lo = lane_quants(t, c, 8 * i), hi = lane_quants(t, c, 8 * i + 4);
                    if (ck_is_q5(t)) {  // + 16 * fifth bit
                        const __m256i one = _mm256_set1_epi32(1);
                        __m256 bl = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(qh, 8 * i + k), one));
                        __m256 bh = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(qh, 8 * i + 4 + k), one));
                        lo = _mm256_fmadd_ps(bl, _mm256_set1_ps(16.0f), lo);
                        hi = _mm256_fmadd_ps(bh, _mm256_set1_ps(16.0f), hi);
                    }
                    for (int j = 0; j < NR; j++) {
                        qs[j] = _mm256_fmadd_ps(lo, _mm256_broadcast_ss(xs[j] + b * CK_QK + 4 * k + i), qs[j]);
                        qs[j] = _mm256_fmadd_ps(hi, _mm256_broadcast_ss(xs[j] + b * CK_QK + 16 + 4 * k + i), qs[j]);
                    }
                }
            }
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + qb)));
        __m256 mw = ck_has_min(t) ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + qb + 16)))
                  : t == CK_Q4_0 ? _mm256_mul_ps(dw, _mm256_set1_ps(-8.0f))
                  : t == CK_Q5_0 ? _mm256_mul_ps(dw, _mm256_set1_ps(-16.0f))
                                 : _mm256_setzero_ps();
        for (int j = 0; j < NR; j++)
            acc[j] = _mm256_fmadd_ps(dw, qs[j], _mm256_fmadd_ps(mw, _mm256_set1_ps(xsum[j]), acc[j]));
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

static CK_TARGET_AVX2 void f32act_tiles(ck_type t, int nr, const uint8_t *P, int64_t nb, const float *const *xs,
                                        float *out) {
#define CK_CASES(NR)                                                          \
    case NR:                                                                  \
        if (t == CK_Q8_0) f32act_tile(CK_Q8_0, NR, P, nb, xs, out);           \
        else if (t == CK_Q4_0) f32act_tile(CK_Q4_0, NR, P, nb, xs, out);      \
        else if (t == CK_Q4_1) f32act_tile(CK_Q4_1, NR, P, nb, xs, out);      \
        else if (t == CK_Q5_0) f32act_tile(CK_Q5_0, NR, P, nb, xs, out);      \
        else f32act_tile(CK_Q5_1, NR, P, nb, xs, out);                        \
        break;
    switch (nr) { CK_CASES(1) CK_CASES(2) CK_CASES(3) CK_CASES(4) }
#undef CK_CASES
}

CK_TARGET_AVX2 void ck_mm_quant_f32act_avx2(ck_type t, const void *packed, int64_t rows, int64_t cols,
                                            const float *x, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nb = cols / CK_QK;
    const size_t pbytes = ck_panel_bytes(t, cols);
    float out[4 * CK_PANEL];
    const float *xs[4];
    for (int64_t p = r0 / CK_PANEL; p * CK_PANEL < r1; p++) {
        const uint8_t *P = (const uint8_t *)packed + (size_t)p * pbytes;
        for (int64_t j0 = 0; j0 < n; j0 += 4) {
            int nr = n - j0 < 4 ? (int)(n - j0) : 4;
            for (int j = 0; j < nr; j++) xs[j] = x + (j0 + j) * cols;
            f32act_tiles(t, nr, P, nb, xs, out);
            for (int j = 0; j < nr; j++) ck_store_panel(y + (j0 + j) * ldy, out + 8 * j, p * CK_PANEL, r0, r1);
        }
    }
}

void ck_matmul_f32act(ck_type t, const void *packed, int64_t rows, int64_t cols,
                      const float *x, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const ck_traits *tr = ck_traits_of(t);
    if (!tr) return;
    if (!tr->quant_act) { ck_matmul(t, packed, rows, cols, x, n, y, ldy, r0, r1); return; }
    if (r0 < 0) r0 = 0;
    if (r1 > rows) r1 = rows;
    if (r0 >= r1 || n <= 0 || cols <= 0) return;
    if (tr->kpanels) ck_mm_kp_f32act(t, packed, rows, cols, x, n, y, ldy, r0, r1);
    else if (ck_isa_current() >= CK_ISA_AVX2) ck_mm_quant_f32act_avx2(t, packed, rows, cols, x, n, y, ldy, r0, r1);
    else ck_mm_quant_f32act_scalar(t, packed, rows, cols, x, n, y, ldy, r0, r1);
}
