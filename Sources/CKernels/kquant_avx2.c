// AVX2 kernels for K-quants (kquant_simd.h): maddubs (u8 x s8 pair sums, never saturating here)
// then madd against the sub-block scales, which applies the K-quant scales in the same instruction. Also the K-quant activation rows, identical to ck_q8k_row_scalar.
#include "ck_kquants.h"
#include <immintrin.h>

#define KQ_FN CK_TARGET_AVX2
#define KQ_ENTRY ck_mm_kp_avx2
#define KQ_DPBUSD 0
#include "kquant_simd.h"

// Per 256 values: amax, then the same operations as ck_qact_row_avx2 (round half to even).
CK_TARGET_AVX2 void ck_q8k_row_avx2(const float *x, int64_t cols, void *dst) {
    const int64_t nsb = cols / CK_QKK;
    int8_t *q = dst;
    float *dd = (float *)((uint8_t *)dst + cols);
    int16_t *bs = (int16_t *)(dd + nsb);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < nsb; b++, x += CK_QKK, q += CK_QKK) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < CK_QKK; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + k), absmask));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        for (int k = 0; k < CK_QKK; k += 32) {
#define CK_Q(o) _mm256_cvtps_epi32(_mm256_min_ps(lim, _mm256_max_ps(nlim, \
                    _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k + o), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))))
            __m256i i0 = CK_Q(0), i1 = CK_Q(8), i2 = CK_Q(16), i3 = CK_Q(24);
#undef CK_Q
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            _mm256_storeu_si256((__m256i *)(q + k), _mm256_permutevar8x32_epi32(p, perm));
            // sums of 16: (i0 + i1) and (i2 + i3), each 8 lanes summed
            __m256i s01 = _mm256_add_epi32(i0, i1), s23 = _mm256_add_epi32(i2, i3);
            __m256i h = _mm256_hadd_epi32(s01, s23);  // lane-wise pairs
            h = _mm256_hadd_epi32(h, h);
            // per 128-bit lane: [s01 partial, s23 partial, ...]; add the two lanes
            __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            bs[16 * b + k / 16] = (int16_t)_mm_extract_epi32(t, 0);
            bs[16 * b + k / 16 + 1] = (int16_t)_mm_extract_epi32(t, 1);
        }
        dd[b] = d;
    }
}
