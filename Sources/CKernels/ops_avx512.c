// AVX-512 GELU-gated product (reference: ck_gelu_mul_ref in ops.c).
#include "ck_internal.h"
#include "ops_simd.h"
#include <immintrin.h>

static CK_TARGET_VNNI CK_ALWAYS_INLINE __m512 gelu16(__m512 v, __m512 u) {
    const __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.79788456080286535587989211986876f), v),
                                   _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), _mm512_mul_ps(v, v), _mm512_set1_ps(1.0f)));
    const __m512 e = ck_v16_expf(_mm512_mul_ps(_mm512_set1_ps(-2.0f), t));
    return _mm512_mul_ps(_mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

CK_TARGET_VNNI
void ck_gelu_mul_avx512(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(g + i, gelu16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(g + i, m, gelu16(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, u + i)));
    }
}
