// AVX2 row conversions: fast dequantization (bit-identical to quant_ref.c) and activation
// quantization to int8 blocks (identical to ck_qact_row_scalar).
#include "ck_internal.h"
#include <immintrin.h>

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

CK_TARGET_AVX2 void ck_deq_f16_avx2(const void *s, float *d, int64_t n) {
    const uint8_t *p = s;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) d[i] = ck_f16_to_f32(rd16(p + 2 * i));
}

CK_TARGET_AVX2 void ck_deq_bf16_avx2(const void *s, float *d, int64_t n) {
    const uint8_t *p = s;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
        _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) d[i] = ck_bf16_to_f32(rd16(p + 2 * i));
}

// 16 nibble-values (u8 in a 128-bit register) -> two vectors of 8 floats
static CK_TARGET_AVX2 CK_ALWAYS_INLINE void u8x16_to_f32(__m128i v, __m256 *a, __m256 *b) {
    *a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    *b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
}

CK_TARGET_AVX2 void ck_deq_q4_0_avx2(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    const __m128i m4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / CK_QK; i++, b += 18, y += CK_QK) {
        __m256 d = _mm256_set1_ps(ck_f16_to_f32(rd16(b)));
        __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
        // signed: (q - 8) in -8..7, exact in float; one rounding in the product as the reference
        _mm256_storeu_ps(y + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
        _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
    }
}

CK_TARGET_AVX2 void ck_deq_q4_1_avx2(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    const __m128i m4 = _mm_set1_epi8(15);
    for (int64_t i = 0; i < n / CK_QK; i++, b += 20, y += CK_QK) {
        __m256 d = _mm256_set1_ps(ck_f16_to_f32(rd16(b))), m = _mm256_set1_ps(ck_f16_to_f32(rd16(b + 2)));
        __m128i q = _mm_loadu_si128((const __m128i *)(b + 4));
        __m256 a0, a1, a2, a3;
        u8x16_to_f32(_mm_and_si128(q, m4), &a0, &a1);
        u8x16_to_f32(_mm_and_si128(_mm_srli_epi16(q, 4), m4), &a2, &a3);
        _mm256_storeu_ps(y + 0, _mm256_fmadd_ps(a0, d, m));
        _mm256_storeu_ps(y + 8, _mm256_fmadd_ps(a1, d, m));
        _mm256_storeu_ps(y + 16, _mm256_fmadd_ps(a2, d, m));
        _mm256_storeu_ps(y + 24, _mm256_fmadd_ps(a3, d, m));
    }
}

CK_TARGET_AVX2 void ck_deq_q8_0_avx2(const void *s, float *y, int64_t n) {
    const uint8_t *b = s;
    for (int64_t i = 0; i < n / CK_QK; i++, b += 34, y += CK_QK) {
        __m256 d = _mm256_set1_ps(ck_f16_to_f32(rd16(b)));
        for (int k = 0; k < 4; k++) {
            __m128i q = _mm_loadl_epi64((const __m128i *)(b + 2 + 8 * k));
            _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

// Activation row -> int8 blocks; same operations as ck_qact_row_scalar (round half to even).
CK_TARGET_AVX2 void ck_qact_row_avx2(const float *x, int64_t cols, void *dst) {
    const int64_t nb = cols / CK_QK;
    int8_t *q = dst;
    float *dd = (float *)((uint8_t *)dst + cols), *ss = dd + nb;
    int32_t *sum = (int32_t *)(ss + nb);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < nb; b++, x += CK_QK, q += CK_QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
#define CK_Q(v) _mm256_cvtps_epi32(_mm256_min_ps(lim, _mm256_max_ps(nlim, \
                    _mm256_round_ps(_mm256_mul_ps(v, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))))
        __m256i i0 = CK_Q(v0), i1 = CK_Q(v1), i2 = CK_Q(v2), i3 = CK_Q(v3);
#undef CK_Q
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(p, perm));
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0x4e));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0xb1));
        int32_t s = _mm_cvtsi128_si32(t4);
        dd[b] = d;
        ss[b] = d * (float)s;
        sum[b] = s;
    }
}
