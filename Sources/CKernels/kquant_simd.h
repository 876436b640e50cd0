// K-quant panel kernels (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; layout in ck_kquants.h), written once and compiled per
// ISA by kquant_avx2.c, kquant_avx512.c and kquant_vnni_emu.c, which define before including:
//   KQ_FN        target attribute of every function here
//   KQ_ENTRY     name of the exported kernel (ck_matmul_fn signature)
//   KQ_DPBUSD    1: sums per sub-block with vpdpbusd (u8 x s8, four products into i32), then times
//                the sub-block scales (vpmulld). 0 (AVX2): maddubs pairs, then madd against the scales,
//                which sums and scales in one instruction.
// A tile is one 8-row panel x NR (<= 4) activation rows: lane r of every vector is row r, so a
// broadcast 4-byte activation group meets 8 rows at once and nothing is summed horizontally.
// Weight quants are unsigned (<= 63; Q3_K's and Q6_K's stored with their offset) and activations in [-127, 127]: maddubs pairs (<= 2 * 63 * 127)
// never saturate and both ISAs compute exactly the integers kquant_ref.c states.
#include "ck_kquants.h"
#include <immintrin.h>

static KQ_FN CK_ALWAYS_INLINE __m256i kq_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

// Bit `bit` of each byte of h moved to bit 4 (the fifth bit of a 5-bit quant), other bits cleared.
static KQ_FN CK_ALWAYS_INLINE __m256i kq_bit_to_16(__m256i h, const int bit) {
    __m256i m = _mm256_and_si256(h, _mm256_set1_epi8((char)(1 << bit)));
    return bit <= 4 ? _mm256_slli_epi16(m, 4 - bit) : _mm256_srli_epi16(m, bit - 4);
}

static KQ_FN CK_ALWAYS_INLINE __m256i kq_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// A pair-of-sub-blocks scale vector (16 bytes: row r's scales of sub-blocks 2p, 2p + 1 at 2r, 2r + 1),
// widened to i16 lanes pairs; then the even / odd sub-block's scale in the form the products take:
// (sc, sc) i16 pairs for madd (AVX2), sc as i32 for vpmulld (VNNI).
static KQ_FN CK_ALWAYS_INLINE __m256i kq_pair(const uint8_t *p, const int sign) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    return sign ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
}
static KQ_FN CK_ALWAYS_INLINE __m256i kq_even(__m256i pr) {
#if KQ_DPBUSD
    return _mm256_srai_epi32(_mm256_slli_epi32(pr, 16), 16);
#else
    return _mm256_blend_epi16(pr, _mm256_slli_epi32(pr, 16), 0xAA);
#endif
}
static KQ_FN CK_ALWAYS_INLINE __m256i kq_odd(__m256i pr) {
#if KQ_DPBUSD
    return _mm256_srai_epi32(pr, 16);
#else
    return _mm256_blend_epi16(_mm256_srli_epi32(pr, 16), pr, 0xAA);
#endif
}

// The products of one step: sub-block sums (VNNI) or scaled sums straight into the total (AVX2).
#if KQ_DPBUSD
#define KQ_STEP(part, total, u, a, scale) (part) = KQ_DPBUSD_OP(part, u, a)
#define KQ_FLUSH(part, total, scale) \
    do { (total) = _mm256_add_epi32(total, _mm256_mullo_epi32(part, scale)); (part) = _mm256_setzero_si256(); } while (0)
#else
#define KQ_STEP(part, total, u, a, scale) (total) = _mm256_add_epi32(total, _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), scale))
#define KQ_FLUSH(part, total, scale) do { (void)(part); } while (0)
#endif

// The activation sums of pairs of 16 as i16 pairs: lane x = (bsum pair 2x, bsum pair 2x + 1) of
// `pairs` 16-sums each (Q4_K / Q5_K: sub-blocks of 32, so sums of two bsums; Q6_K: bsums as they are).
static KQ_FN CK_ALWAYS_INLINE __m256i kq_act_pair(const int16_t *bs, const int x, const int k4) {
    if (k4) {
        __m128i s = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
        int32_t v = _mm_extract_epi32(s, 0);
        switch (x) { case 1: v = _mm_extract_epi32(s, 1); break; case 2: v = _mm_extract_epi32(s, 2); break;
                     case 3: v = _mm_extract_epi32(s, 3); break; default: break; }
        return _mm256_set1_epi32(v);
    }
    int32_t v;
    memcpy(&v, bs + 2 * x, 4);
    return _mm256_set1_epi32(v);
}

static KQ_FN CK_ALWAYS_INLINE __m256 kq_d8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

// ---- Q2_K ----
// Step (n, j, s): quant bits 2j, 2j+1 of the 32 bytes at (8 n + s) * 32, elements 128 n + 32 j + 4 s + (0..3) of
// every row: sub-block 8 n + 2 j for s < 4, 8 n + 2 j + 1 for s >= 4, so the scale pair of step (n, j) is pair 4 n + j.
static KQ_FN CK_ALWAYS_INLINE void kp_k2_tile(const int NR, const uint8_t *P, int64_t nsb, const ck_q8k_row *a,
                                              float *out) {
    const ck_kp_layout l = ck_kp_of(CK_Q2_K);
    const __m256i m3 = _mm256_set1_epi8(3), m15 = _mm256_set1_epi16(15);
    __m256 acc[4], accm[4];
    for (int j = 0; j < NR; j++) acc[j] = accm[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++, P += l.bytes) {
        if (NR == 1) prefetch_block(P, (int64_t)l.bytes);
        __m256i tot[4], plo[4], phi[4];
        for (int j = 0; j < NR; j++) tot[j] = plo[j] = phi[j] = _mm256_setzero_si256();
        for (int n = 0; n < 2; n++)
            for (int jj = 0; jj < 4; jj++) {
                const __m256i pr = _mm256_and_si256(kq_pair(P + l.sc + 16 * (4 * n + jj), 0), m15);  // scale | min << 4
                const __m256i slo = kq_even(pr), shi = kq_odd(pr);
                for (int s = 0; s < 8; s++) {
                    __m256i u = _mm256_and_si256(_mm256_srli_epi16(kq_load(P + (8 * n + s) * 32), 2 * jj), m3);
                    for (int j = 0; j < NR; j++) {
                        const __m256i av = kq_bcast4(a[j].q + i * CK_QKK + 128 * n + 32 * jj + 4 * s);
                        if (s < 4) KQ_STEP(plo[j], tot[j], u, av, slo);
                        else KQ_STEP(phi[j], tot[j], u, av, shi);
                    }
                }
                for (int j = 0; j < NR; j++) {
                    KQ_FLUSH(plo[j], tot[j], slo);
                    KQ_FLUSH(phi[j], tot[j], shi);
                }
            }
        const __m256 d = kq_d8(P + l.d);
        for (int j = 0; j < NR; j++) {
            const int16_t *bs = a[j].bsum + 16 * i;
            // sum_g m_g bsum_g (the mins)
            __m256i o = _mm256_setzero_si256();
            for (int x = 0; x < 8; x++) {
                const __m256i pr = _mm256_srli_epi16(kq_pair(P + l.sc + 16 * x, 0), 4);
                o = _mm256_add_epi32(o, _mm256_madd_epi16(pr, kq_act_pair(bs, x, 0)));
            }
            const __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(a[j].d[i]));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[j]), dd, acc[j]);
            accm[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(o), _mm256_mul_ps(kq_d8(P + l.dmin), _mm256_set1_ps(a[j].d[i])), accm[j]);
        }
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, _mm256_sub_ps(acc[j], accm[j]));
}

// ---- Q3_K ----
// Step (k, s), k = 4 n + j: elements 128 n + 32 j + 4 s + (0..3) of every row, sub-block 2 k for s < 4 and
// 2 k + 1 for s >= 4, so the scale pair of step k is pair k. kq_u3 takes the step's stored quants (0..7) out
// of the three planes times a power of two f_k: a mask alone for k < 6 (3-bit fields at bit 0: f = 1, or
// bit 3: f = 8), a shift, masks and an or for k = 6, 7 (f = 16). The sub-block scales are taken times
// 16 / f_k (kq_sh3), so every product carries a factor 16, which the integer sums give back exactly
// (times 1 / 16 after the conversion to f32, a power of two). u <= 7 * 16: maddubs pairs stay below
// 2 * 112 * 127, the scaled scales (<= 32 * 16) fit in i16 and the sums in i32 (< 2^27).
static KQ_FN CK_ALWAYS_INLINE __m256i kq_u3(const uint8_t *P, const int k, const int s) {
    const uint8_t *x = P + 32 * s;
    if (k < 6) return _mm256_and_si256(kq_load(x + 256 * (k / 2)), _mm256_set1_epi8(k & 1 ? 0x38 : 7));
    // low bits 6, 7 of plane 0 (k = 6) or 2 (k = 7) to bits 4, 5; third bit 6 / 7 of plane 1 to bit 6
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(kq_load(x + (k == 6 ? 0 : 512)), 2), _mm256_set1_epi8(0x30));
    const __m256i h = kq_load(x + 256);
    return _mm256_or_si256(lo, _mm256_and_si256(k == 6 ? h : _mm256_srli_epi16(h, 1), _mm256_set1_epi8(0x40)));
}
static inline int kq_sh3(const int k) { return k < 6 ? (k & 1 ? 1 : 4) : 0; }  // log2(16 / f_k)

static KQ_FN CK_ALWAYS_INLINE void kp_k3_tile(const int NR, const uint8_t *P, int64_t nsb, const ck_q8k_row *a,
                                              float *out) {
    const ck_kp_layout l = ck_kp_of(CK_Q3_K);
    const __m256 sixteenth = _mm256_set1_ps(0.0625f);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++, P += l.bytes) {
        if (NR == 1) prefetch_block(P, (int64_t)l.bytes);
        __m256i tot[4], plo[4], phi[4];
        for (int j = 0; j < NR; j++) tot[j] = plo[j] = phi[j] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            const __m256i pr = _mm256_slli_epi16(kq_pair(P + l.sc + 16 * k, 1), kq_sh3(k));
            const __m256i slo = kq_even(pr), shi = kq_odd(pr);
            for (int s = 0; s < 8; s++) {
                const __m256i u = kq_u3(P, k, s);
                for (int j = 0; j < NR; j++) {
                    const __m256i av = kq_bcast4(a[j].q + i * CK_QKK + 32 * k + 4 * s);
                    if (s < 4) KQ_STEP(plo[j], tot[j], u, av, slo);
                    else KQ_STEP(phi[j], tot[j], u, av, shi);
                }
            }
            for (int j = 0; j < NR; j++) {
                KQ_FLUSH(plo[j], tot[j], slo);
                KQ_FLUSH(phi[j], tot[j], shi);
            }
        }
        const __m256 d = kq_d8(P + l.d);
        for (int j = 0; j < NR; j++) {
            const int16_t *bs = a[j].bsum + 16 * i;
            __m256i o = _mm256_setzero_si256();  // sum_g sc_g bsum_g: the -4 of every stored quant
            for (int x = 0; x < 8; x++) o = _mm256_add_epi32(o, _mm256_madd_epi16(kq_pair(P + l.sc + 16 * x, 1), kq_act_pair(bs, x, 0)));
            const __m256i v = _mm256_sub_epi32(tot[j], _mm256_slli_epi32(o, 6));  // 16 (sum_g sc_g ((q . a)_g - 4 bsum_g))
            const __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(a[j].d[i]));
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), sixteenth), dd, acc[j]);
        }
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

// ---- Q4_K / Q5_K ----
static KQ_FN CK_ALWAYS_INLINE void kp_k45_tile(const ck_type t, const int NR, const uint8_t *P, int64_t nsb,
                                               const ck_q8k_row *a, float *out) {
    const ck_kp_layout l = ck_kp_of(t);
    const int five = t == CK_Q5_K;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc[4], accm[4];
    for (int j = 0; j < NR; j++) acc[j] = accm[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++, P += l.bytes) {
        if (NR == 1) prefetch_block(P, (int64_t)l.bytes);
        __m256i tot[4], plo[4], phi[4];
        for (int j = 0; j < NR; j++) tot[j] = plo[j] = phi[j] = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            const __m256i pr = kq_pair(P + l.sc + 16 * k, 0), slo = kq_even(pr), shi = kq_odd(pr);
            for (int s = 0; s < 8; s++) {
                const __m256i c = kq_load(P + (8 * k + s) * 32);
                __m256i lo = _mm256_and_si256(c, m4), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
                if (five) {
                    const __m256i hv = kq_load(P + 1024 + 32 * s);
                    lo = _mm256_or_si256(lo, kq_bit_to_16(hv, 2 * k));
                    hi = _mm256_or_si256(hi, kq_bit_to_16(hv, 2 * k + 1));
                }
                for (int j = 0; j < NR; j++) {
                    const int8_t *q = a[j].q + i * CK_QKK + 64 * k + 4 * s;
                    KQ_STEP(plo[j], tot[j], lo, kq_bcast4(q), slo);
                    KQ_STEP(phi[j], tot[j], hi, kq_bcast4(q + 32), shi);
                }
            }
            for (int j = 0; j < NR; j++) {
                KQ_FLUSH(plo[j], tot[j], slo);
                KQ_FLUSH(phi[j], tot[j], shi);
            }
        }
        const __m256 d = kq_d8(P + l.d), dmin = kq_d8(P + l.dmin);
        for (int j = 0; j < NR; j++) {
            const int16_t *bs = a[j].bsum + 16 * i;
            __m256i ms = _mm256_setzero_si256();  // sum over sub-blocks of min x activation sum, per row
            for (int x = 0; x < 4; x++) ms = _mm256_add_epi32(ms, _mm256_madd_epi16(kq_pair(P + l.mn + 16 * x, 0), kq_act_pair(bs, x, 1)));
            const __m256 da = _mm256_set1_ps(a[j].d[i]);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[j]), _mm256_mul_ps(d, da), acc[j]);
            accm[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(dmin, da), accm[j]);
        }
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, _mm256_sub_ps(acc[j], accm[j]));
}

// ---- Q6_K ----
static KQ_FN CK_ALWAYS_INLINE void kp_k6_tile(const int NR, const uint8_t *P, int64_t nsb, const ck_q8k_row *a,
                                              float *out) {
    const ck_kp_layout l = ck_kp_of(CK_Q6_K);
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++, P += l.bytes) {
        if (NR == 1) prefetch_block(P, (int64_t)l.bytes);
        __m256i tot[4], plo[4], phi[4];
        for (int j = 0; j < NR; j++) tot[j] = plo[j] = phi[j] = _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            // sub-blocks of 16: low nibbles (h = 0) of steps s < 4 are 4k, s >= 4: 4k + 1; h = 1: 4k + 2, 4k + 3
            const __m256i pa = kq_pair(P + l.sc + 32 * k, 1), pb = kq_pair(P + l.sc + 32 * k + 16, 1);
            for (int half = 0; half < 2; half++) {
                const __m256i slo = half ? kq_odd(pa) : kq_even(pa), shi = half ? kq_odd(pb) : kq_even(pb);
                for (int s = 4 * half; s < 4 * half + 4; s++) {
                    const __m256i c = kq_load(P + (8 * k + s) * 32), hv = kq_load(P + 1024 + (4 * k + s / 2) * 32);
                    __m256i lo = _mm256_and_si256(c, m4), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
                    if (s & 1) {
                        lo = _mm256_or_si256(lo, _mm256_and_si256(hv, m30));
                        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(hv, 2), m30));
                    } else {
                        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hv, 4), m30));
                        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hv, 2), m30));
                    }
                    for (int j = 0; j < NR; j++) {
                        const int8_t *q = a[j].q + i * CK_QKK + 64 * k + 4 * s;
                        KQ_STEP(plo[j], tot[j], lo, kq_bcast4(q), slo);
                        KQ_STEP(phi[j], tot[j], hi, kq_bcast4(q + 32), shi);
                    }
                }
                for (int j = 0; j < NR; j++) {
                    KQ_FLUSH(plo[j], tot[j], slo);
                    KQ_FLUSH(phi[j], tot[j], shi);
                }
            }
        }
        const __m256 d = kq_d8(P + l.d);
        for (int j = 0; j < NR; j++) {
            const int16_t *bs = a[j].bsum + 16 * i;
            __m256i off = _mm256_setzero_si256();  // sum_g sc_g bsum_g per row: the -32 of every quant
            for (int x = 0; x < 8; x++) off = _mm256_add_epi32(off, _mm256_madd_epi16(kq_pair(P + l.sc + 16 * x, 1), kq_act_pair(bs, x, 0)));
            const __m256i v = _mm256_sub_epi32(tot[j], _mm256_slli_epi32(off, 5));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(d, _mm256_set1_ps(a[j].d[i])), acc[j]);
        }
    }
    for (int j = 0; j < NR; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

static KQ_FN void kp_tile(ck_type t, int nr, const uint8_t *P, int64_t nsb, const ck_q8k_row *a, float *out) {
#define KQ_CASES(NR)                                                     \
    case NR:                                                             \
        if (t == CK_Q4_K) kp_k45_tile(CK_Q4_K, NR, P, nsb, a, out);      \
        else if (t == CK_Q5_K) kp_k45_tile(CK_Q5_K, NR, P, nsb, a, out); \
        else if (t == CK_Q2_K) kp_k2_tile(NR, P, nsb, a, out);           \
        else if (t == CK_Q3_K) kp_k3_tile(NR, P, nsb, a, out);           \
        else kp_k6_tile(NR, P, nsb, a, out);                             \
        break;
    switch (nr) { KQ_CASES(1) KQ_CASES(2) KQ_CASES(3) KQ_CASES(4) }
#undef KQ_CASES
}

KQ_FN void KQ_ENTRY(ck_type t, const void *packed, int64_t rows, int64_t cols,
                    const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const int64_t nsb = cols / CK_QKK, chunk = 64;  // activation rows per pass (L2-resident)
    const size_t pbytes = ck_kp_panel_bytes(t, cols);
    float out[4 * CK_PANEL];
    ck_q8k_row a[4];
    for (int64_t jc = 0; jc < n; jc += chunk) {
        const int64_t je = jc + chunk < n ? jc + chunk : n;
        for (int64_t p = r0 / CK_PANEL; p * CK_PANEL < r1; p++) {
            const uint8_t *P = (const uint8_t *)packed + (size_t)p * pbytes;
            for (int64_t j0 = jc; j0 < je; j0 += 4) {
                const int nr = je - j0 < 4 ? (int)(je - j0) : 4;
                for (int j = 0; j < nr; j++) a[j] = ck_q8k_at(act, cols, j0 + j);
                kp_tile(t, nr, P, nsb, a, out);
                for (int j = 0; j < nr; j++) ck_store_panel(y + (j0 + j) * ldy, out + 8 * j, p * CK_PANEL, r0, r1);
            }
        }
    }
}
