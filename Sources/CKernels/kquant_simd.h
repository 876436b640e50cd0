// Row-major kernels for Q4_K, Q5_K and Q6_K, written once and compiled per ISA by
// kquant_avx2.c, kquant_avx512.c and kquant_vnni_emu.c, which define before including:
//   KQ_FN               target attribute of every function here
//   KQ_ENTRY            name of the exported kernel (ck_matmul_fn signature)
//   KQ_SCALE(lo, hi)    a vector of sub-block scales for KQ_SDOT: `lo` for bytes 0..15, `hi` for 16..31
//   KQ_SDOT(acc, u, s, scale)   acc += the products of u and s, times the scales (exact in i32)
// All weight quants here are unsigned (<= 63) and activations are in [-127, 127], so AVX2's
// maddubs pairs (<= 2 * 63 * 127) never saturate: both ISAs compute the same integers, exactly
// the ones kquant_ref.c states. One weight row meets up to 4 activation rows per pass, so each
// weight block is decoded once for all of them (prefill), and streamed with prefetch for n = 1.
#include "ck_kquants.h"
#include <immintrin.h>

static KQ_FN CK_ALWAYS_INLINE float kq_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static KQ_FN CK_ALWAYS_INLINE __m256i kq_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

// f16 -> f32 with F16C (exact, as ck_f16_to_f32), inline: a call per block costs more than the block.
static KQ_FN CK_ALWAYS_INLINE float kq_f16(const uint8_t *p) { return _cvtsh_ss(ck_rd16(p)); }

// sum_s m[s] * (bs[2s] + bs[2s+1]) for 8 u8 mins and 16 i16 activation sums (pairs stay <= 2 * 16 * 127).
static KQ_FN CK_ALWAYS_INLINE int32_t kq_min_sum(const uint8_t *m, const int16_t *bs) {
    __m128i mm = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)m));
    __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
    __m128i p = _mm_madd_epi16(mm, pairs);
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4e));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xb1));
    return _mm_cvtsi128_si32(p);
}

// sum_g sc[g] * bs[g] for 16 i8 scales and 16 i16 activation sums.
static KQ_FN CK_ALWAYS_INLINE int32_t kq_scale_sum(const int8_t *sc, const int16_t *bs) {
    __m128i s = _mm_loadu_si128((const __m128i *)sc);
    __m128i p = _mm_add_epi32(_mm_madd_epi16(_mm_cvtepi8_epi16(s), _mm_loadu_si128((const __m128i *)bs)),
                              _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_srli_si128(s, 8)), _mm_loadu_si128((const __m128i *)(bs + 8))));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4e));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xb1));
    return _mm_cvtsi128_si32(p);
}

// Bit `bit` of each byte of h moved to bit 4 (the fifth bit of a 5-bit quant), other bits cleared.
static KQ_FN CK_ALWAYS_INLINE __m256i kq_bit_to_16(__m256i h, const int bit) {
    __m256i m = _mm256_and_si256(h, _mm256_set1_epi8((char)(1 << bit)));
    return bit <= 4 ? _mm256_slli_epi16(m, 4 - bit) : _mm256_srli_epi16(m, bit - 4);
}

// ---- Q4_K / Q5_K ----
static KQ_FN CK_ALWAYS_INLINE void kq_k45_tile(const int five, const int NR, const uint8_t *w, int64_t nsb,
                                               const ck_q8k_row *a, float *out) {
    const size_t bb = five ? 176 : 144;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc[4];
    float accm[4];
    for (int j = 0; j < NR; j++) { acc[j] = _mm256_setzero_ps(); accm[j] = 0; }
    for (int64_t i = 0; i < nsb; i++, w += bb) {
        if (NR == 1) prefetch_block(w, (int64_t)bb);
        const float d = kq_f16(w), dmin = kq_f16(w + 2);
        uint8_t sc[8], m[8];
        ck_kq_scales(w + 4, sc, m);
        const uint8_t *qs = w + (five ? 48 : 16);
        __m256i qv[8];  // sub-block s: 32 quants
        __m256i hb = five ? kq_load(w + 16) : _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) {
            __m256i c = kq_load(qs + 32 * k);
            qv[2 * k] = _mm256_and_si256(c, m4);
            qv[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
        }
        if (five)
            for (int s = 0; s < 8; s++) qv[s] = _mm256_or_si256(qv[s], kq_bit_to_16(hb, s));
        for (int j = 0; j < NR; j++) {
            const int8_t *q = a[j].q + i * CK_QKK;
            const int16_t *bs = a[j].bsum + 16 * i;
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();  // two chains (latency)
            for (int s = 0; s < 8; s += 2) {
                s0 = KQ_SDOT(s0, qv[s], kq_load(q + 32 * s), KQ_SCALE(sc[s], sc[s]));
                s1 = KQ_SDOT(s1, qv[s + 1], kq_load(q + 32 * s + 32), KQ_SCALE(sc[s + 1], sc[s + 1]));
            }
            const int32_t msum = kq_min_sum(m, bs);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), _mm256_set1_ps(d * a[j].d[i]), acc[j]);
            accm[j] += dmin * a[j].d[i] * (float)msum;
        }
    }
    for (int j = 0; j < NR; j++) out[j] = kq_hsum(acc[j]) - accm[j];
}

// ---- Q6_K ----
static KQ_FN CK_ALWAYS_INLINE void kq_k6_tile(const int NR, const uint8_t *w, int64_t nsb, const ck_q8k_row *a,
                                              float *out) {
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[4];
    for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nsb; i++, w += 210) {
        if (NR == 1) prefetch_block(w, 210);
        const int8_t *sc = (const int8_t *)(w + 192);
        const float d = kq_f16(w + 208);
        __m256i qv[8];  // 32 values each: 128 h + 32 k + l for qv[4 h + k]
        for (int h = 0; h < 2; h++) {
            __m256i la = kq_load(w + 64 * h), lb = kq_load(w + 64 * h + 32), hi = kq_load(w + 128 + 32 * h);
            qv[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(la, m4), _mm256_and_si256(_mm256_slli_epi16(hi, 4), m30));
            qv[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(lb, m4), _mm256_and_si256(_mm256_slli_epi16(hi, 2), m30));
            qv[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m4), _mm256_and_si256(hi, m30));
            qv[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m4),
                                            _mm256_and_si256(_mm256_srli_epi16(hi, 2), m30));
        }
        for (int j = 0; j < NR; j++) {
            const int8_t *q = a[j].q + i * CK_QKK;
            const int16_t *bs = a[j].bsum + 16 * i;
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
            for (int k = 0; k < 8; k += 2) {
                s0 = KQ_SDOT(s0, qv[k], kq_load(q + 32 * k), KQ_SCALE(sc[2 * k], sc[2 * k + 1]));
                s1 = KQ_SDOT(s1, qv[k + 1], kq_load(q + 32 * k + 32), KQ_SCALE(sc[2 * k + 2], sc[2 * k + 3]));
            }
            const int32_t off = kq_scale_sum(sc, bs);  // the -32 of every quant, through the activation sums
            __m256i s = _mm256_sub_epi32(_mm256_add_epi32(s0, s1), _mm256_setr_epi32(32 * off, 0, 0, 0, 0, 0, 0, 0));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * a[j].d[i]), acc[j]);
        }
    }
    for (int j = 0; j < NR; j++) out[j] = kq_hsum(acc[j]);
}

static KQ_FN void kq_tile(ck_type t, int nr, const uint8_t *w, int64_t cols, const void *act, int64_t j0, float *out) {
    ck_q8k_row ka[4];
    for (int j = 0; j < nr; j++) ka[j] = ck_q8k_at(act, cols, j0 + j);
    const int64_t nsb = cols / CK_QKK;
#define KQ_CASES(NR)                                                    \
    case NR:                                                            \
        switch (t) {                                                    \
        case CK_Q4_K: kq_k45_tile(0, NR, w, nsb, ka, out); break;       \
        case CK_Q5_K: kq_k45_tile(1, NR, w, nsb, ka, out); break;       \
        case CK_Q6_K: kq_k6_tile(NR, w, nsb, ka, out); break;           \
        default: break;                                                 \
        }                                                               \
        break;
    switch (nr) { KQ_CASES(1) KQ_CASES(2) KQ_CASES(3) KQ_CASES(4) }
#undef KQ_CASES
}

KQ_FN void KQ_ENTRY(ck_type t, const void *packed, int64_t rows, int64_t cols,
                    const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    (void)rows;
    const size_t rb = ck_row_bytes(t, cols);
    const int64_t chunk = 64;  // activation rows per pass: keeps the converted activations in L2
    float out[4];
    for (int64_t jc = 0; jc < n; jc += chunk) {
        const int64_t je = jc + chunk < n ? jc + chunk : n;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *w = (const uint8_t *)packed + (size_t)r * rb;
            for (int64_t j0 = jc; j0 < je; j0 += 4) {
                const int nr = je - j0 < 4 ? (int)(je - j0) : 4;
                kq_tile(t, nr, w, cols, act, j0, out);
                for (int j = 0; j < nr; j++) y[(j0 + j) * ldy + r] = out[j];
            }
        }
    }
}
