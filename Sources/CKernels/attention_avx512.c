// AVX-512 attention: 16 queries per pass over each key row (attention_impl.h). Used for prefill,
// where a KV head has more than 8 queries; decode's few queries take the AVX2 kernel.
#include "ck_internal.h"
#include <immintrin.h>

#define ATT_FN ck_attention_avx512
#define ATT_TARGET CK_TARGET_VNNI
#define ATT_L 16
#define ATT_W 16
#define VT __m512
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_BCAST(p) _mm512_set1_ps(*(p))
// The package builds with -ffp-contract=fast, which fuses a multiply and an add even across
// statements and pragmas: an empty asm on the product keeps it rounded before the add.
static ATT_TARGET CK_ALWAYS_INLINE VT att_mac(VT a, VT b, VT c) {
    VT p = _mm512_mul_ps(a, b);
    __asm__("" : "+v"(p));
    return _mm512_add_ps(p, c);
}
#define V_MAC(a, b, c) att_mac(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#include "attention_impl.h"
