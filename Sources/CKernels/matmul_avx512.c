// AVX-512 VNNI kernels for quantized weights (Zen 4, Ice Lake and later).
// Same tiles and packed layout as matmul_avx2.c, but vpdpbusd (u8 x s8, four products summed
// into i32, accumulated, no saturation) replaces maddubs + madd + add. 256-bit registers
// (AVX512VL): on Zen 4 a 512-bit op costs two 256-bit ones anyway, and the layout maps 1:1.
//
// CK_VNNI_EMULATE (never set in the package build) swaps vpdpbusd for an exact AVX2 emulation so
// scripts/kernelbench/vnni_check.c can run this file's logic on CPUs without AVX-512.
#include "ck_internal.h"
#include <immintrin.h>

#ifndef CK_VNNI_EMULATE
#define VNNI_FN CK_TARGET_VNNI
#define DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#else
#define VNNI_FN CK_TARGET_AVX2
static CK_TARGET_AVX2 CK_ALWAYS_INLINE __m256i DPBUSD(__m256i acc, __m256i u, __m256i s) {
    // widen to i16 (exact), madd pairs into i32, then add adjacent i32 pairs
    __m256i ulo = _mm256_unpacklo_epi8(u, _mm256_setzero_si256()), uhi = _mm256_unpackhi_epi8(u, _mm256_setzero_si256());
    __m256i slo = _mm256_srai_epi16(_mm256_unpacklo_epi8(s, s), 8), shi = _mm256_srai_epi16(_mm256_unpackhi_epi8(s, s), 8);
    __m256i plo = _mm256_madd_epi16(ulo, slo), phi = _mm256_madd_epi16(uhi, shi);
    // plo holds pair sums of bytes {0,1},{2,3},{4,5},{6,7} (per 128-bit lane), phi of {8,9}...{14,15}
    __m256i h = _mm256_hadd_epi32(plo, phi);  // dwords: (0..3),(4..7),(8..11),(12..15) per lane
    return _mm256_add_epi32(acc, h);
}
#endif

static VNNI_FN CK_ALWAYS_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Q4_0 / Q4_1: nibbles are already unsigned. Q5_0 / Q5_1: plus the fifth bits (as matmul_avx2.c).
static VNNI_FN CK_ALWAYS_INLINE void q4_tile(const ck_type t, const int NR, const uint8_t *P, int64_t nb,
                                             const ck_qact_row *a, float *out) {
    const int five = ck_is_q5(t);
    const int64_t bb = (int64_t)ck_panel_block_bytes(t), doff = (int64_t)ck_panel_d_offset(t);
    const __m256i m4 = _mm256_set1_epi8(15), b16 = _mm256_set1_epi8(16);
    __m256 acc[4], accm[4];  // offset terms in their own chain (latency)
    for (int j = 0; j < NR; j++) acc[j] = accm[j] = _mm256_setzero_ps();
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
            // two independent chains (low / high nibbles) for latency
            __m256i sl = DPBUSD(_mm256_setzero_si256(), l0, bcast4(q + 0));
            __m256i sh = DPBUSD(_mm256_setzero_si256(), h0, bcast4(q + 16));
            sl = DPBUSD(sl, l1, bcast4(q + 4));
            sh = DPBUSD(sh, h1, bcast4(q + 20));
            sl = DPBUSD(sl, l2, bcast4(q + 8));
            sh = DPBUSD(sh, h2, bcast4(q + 24));
            sl = DPBUSD(sl, l3, bcast4(q + 12));
            sh = DPBUSD(sh, h3, bcast4(q + 28));
            __m256 f = _mm256_cvtepi32_ps(_mm256_add_epi32(sl, sh));
            acc[j] = _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_set1_ps(a[j].d[b])), acc[j]);
            accm[j] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a[j].s[b]), accm[j]);
        }
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, _mm256_add_ps(acc[j], accm[j]));
}

// Q8_0: w + 128 = w ^ 0x80 is unsigned, so sum((w + 128) * a) - 128 * sum(a) = sum(w * a), exactly
// (the activation block sums are stored by ck_convert_act).
static VNNI_FN CK_ALWAYS_INLINE void q8_tile(const int NR, const uint8_t *P, int64_t nb,
                                             const ck_qact_row *a, float *out) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *w = P + b * 272;
        if (NR == 1) prefetch_block(w, 272);
        __m256i is[4];
        for (int j = 0; j < NR; j++) is[j] = _mm256_set1_epi32(-128 * a[j].sum[b]);
        for (int k = 0; k < 8; k++) {
            __m256i wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + 32 * k)), flip);
            for (int j = 0; j < NR; j++) is[j] = DPBUSD(is[j], wu, bcast4(a[j].q + b * CK_QK + 4 * k));
        }
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 256)));
        for (int j = 0; j < NR; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[j]), _mm256_mul_ps(dw, _mm256_set1_ps(a[j].d[b])), acc[j]);
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

static VNNI_FN void quant_tile(ck_type t, int nr, const uint8_t *P, int64_t nb, const ck_qact_row *a, float *out) {
#define CK_CASES(NR)                                                \
    case NR:                                                        \
        if (t == CK_Q8_0) q8_tile(NR, P, nb, a, out);               \
        else if (t == CK_Q4_1) q4_tile(CK_Q4_1, NR, P, nb, a, out); \
        else if (t == CK_Q5_0) q4_tile(CK_Q5_0, NR, P, nb, a, out); \
        else if (t == CK_Q5_1) q4_tile(CK_Q5_1, NR, P, nb, a, out); \
        else q4_tile(CK_Q4_0, NR, P, nb, a, out);                   \
        break;
    switch (nr) { CK_CASES(1) CK_CASES(2) CK_CASES(3) CK_CASES(4) }
#undef CK_CASES
}

VNNI_FN void ck_mm_quant_vnni(ck_type t, const void *packed, int64_t rows, int64_t cols,
                              const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nb = cols / CK_QK;
    const size_t pbytes = ck_panel_bytes(t, cols);
    const int64_t chunk = 64;  // activation rows per pass (L2-resident)
    float out[4 * CK_PANEL];
    ck_qact_row a[4];
    for (int64_t jc = 0; jc < n; jc += chunk) {
        int64_t je = jc + chunk < n ? jc + chunk : n;
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
