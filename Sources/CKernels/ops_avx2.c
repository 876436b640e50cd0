// AVX2 element-wise ops: RMSNorm over several rows at once, and the GELU-gated product with a
// vector exp. References: ck_rmsnorm_ref and ck_gelu_mul_ref (ops.c).
// No FMA contraction (also of the intrinsics, hence before the includes): RMSNorm must round as
// its reference; the GELU asks for its FMAs explicitly.
#include "ck_internal.h"
#include "ops_simd.h"
#include <immintrin.h>
#include <math.h>

// Each row's sum of squares is the reference's chain (sequential; a product rounded, then added:
// the reference is built without FMA), but R rows' chains run interleaved: a 576- or 640-long
// chain is latency-bound, R of them are not.
#pragma clang fp contract(off)
static CK_TARGET_AVX2 CK_ALWAYS_INLINE void rms_rows(const float *x, const float *w, float *y, const int R,
                                                     int64_t dim, float eps) {
    float sum[8] = {0};
    for (int64_t i = 0; i < dim; i++)
        for (int r = 0; r < R; r++) {
            float sq = x[r * dim + i] * x[r * dim + i];
            __asm__("" : "+x"(sq));  // not fused with the add (-ffp-contract=fast would)
            sum[r] += sq;
        }
    for (int r = 0; r < R; r++) {
        const float scale = 1.0f / sqrtf(sum[r] / (float)dim + eps);
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * scale * w[i];
    }
}

CK_TARGET_AVX2
void ck_rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) rms_rows(x + j * dim, w, y + j * dim, 8, dim, eps);
    for (; j + 4 <= n; j += 4) rms_rows(x + j * dim, w, y + j * dim, 4, dim, eps);
    for (; j < n; j++) rms_rows(x + j * dim, w, y + j * dim, 1, dim, eps);
}

static CK_TARGET_AVX2 CK_ALWAYS_INLINE __m256 gelu8(__m256 v, __m256 u) {
    // v * sigmoid(2t), t = sqrt(2/pi) v (1 + 0.044715 v^2), as ck_gelu_mul_ref
    const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.79788456080286535587989211986876f), v),
                                   _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), _mm256_mul_ps(v, v), _mm256_set1_ps(1.0f)));
    const __m256 e = ck_v8_expf(_mm256_mul_ps(_mm256_set1_ps(-2.0f), t));
    return _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

CK_TARGET_AVX2
void ck_gelu_mul_avx2(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(g + i, gelu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float gb[8] = {0}, ub[8] = {0};
        for (int64_t r = i; r < n; r++) gb[r - i] = g[r], ub[r - i] = u[r];
        _mm256_storeu_ps(gb, gelu8(_mm256_loadu_ps(gb), _mm256_loadu_ps(ub)));
        for (int64_t r = i; r < n; r++) g[r] = gb[r - i];
    }
}
