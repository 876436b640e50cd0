// AVX-512 VNNI kernels (Zen 4 / Ice Lake and later), placeholder until written: use AVX2.
#include "ck_internal.h"
void ck_mm_quant_vnni(ck_type t, const void *packed, int64_t rows, int64_t cols,
                      const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    ck_mm_quant_avx2(t, packed, rows, cols, act, n, y, ldy, r0, r1);
}
