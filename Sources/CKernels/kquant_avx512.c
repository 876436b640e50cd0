// AVX-512 VNNI kernels for K-quants (kquant_simd.h): vpdpbusd sums four u8 x s8
// products into i32 with no intermediate saturation; the K-quant sub-block scales then multiply
// the i32 sums (vpmulld). 256-bit registers (AVX512VL), as matmul_avx512.c.
// CK_VNNI_EMULATE (kquant_vnni_emu.c only) swaps vpdpbusd for an exact AVX2 emulation so the
// tests can run this code on CPUs without AVX-512.
#include "ck_kquants.h"
#include <immintrin.h>

#ifndef CK_VNNI_EMULATE
#define KQ_FN CK_TARGET_VNNI
#define KQ_ENTRY ck_mm_kp_vnni
#define KQ_DPBUSD_OP(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#else
#define KQ_FN CK_TARGET_AVX2
#define KQ_ENTRY ck_mm_kp_vnni_emulated
static CK_TARGET_AVX2 CK_ALWAYS_INLINE __m256i KQ_DPBUSD_OP(__m256i acc, __m256i u, __m256i s) {
    // widen to i16 (exact), madd pairs into i32, then add adjacent i32 pairs
    __m256i ulo = _mm256_unpacklo_epi8(u, _mm256_setzero_si256()), uhi = _mm256_unpackhi_epi8(u, _mm256_setzero_si256());
    __m256i slo = _mm256_srai_epi16(_mm256_unpacklo_epi8(s, s), 8), shi = _mm256_srai_epi16(_mm256_unpackhi_epi8(s, s), 8);
    __m256i h = _mm256_hadd_epi32(_mm256_madd_epi16(ulo, slo), _mm256_madd_epi16(uhi, shi));
    return _mm256_add_epi32(acc, h);
}
#endif

#define KQ_DPBUSD 1
#include "kquant_simd.h"
