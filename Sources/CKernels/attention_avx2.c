// AVX2 attention: 8 queries per pass over each key row (attention_impl.h).
#include "ck_internal.h"
#include <immintrin.h>

#define ATT_FN ck_attention_avx2
#define ATT_TARGET CK_TARGET_AVX2
#define ATT_L 8
#define ATT_W 8
#define VT __m256
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_BCAST(p) _mm256_broadcast_ss(p)
// The package builds with -ffp-contract=fast, which fuses a multiply and an add even across
// statements and pragmas: an empty asm on the product keeps it rounded before the add.
static ATT_TARGET CK_ALWAYS_INLINE VT att_mac(VT a, VT b, VT c) {
    VT p = _mm256_mul_ps(a, b);
    __asm__("" : "+x"(p));
    return _mm256_add_ps(p, c);
}
#define V_MAC(a, b, c) att_mac(a, b, c)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#include "attention_impl.h"
