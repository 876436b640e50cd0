// The AVX-512 VNNI kernel's code compiled a second time with vpdpbusd emulated exactly by AVX2,
// so tests on CPUs without AVX-512 still check its logic (ck_matmul_vnni_emulated).
#define CK_VNNI_EMULATE 1
#define ck_mm_quant_vnni ck_mm_quant_vnni_emulated
#include "matmul_avx512.c"
#undef ck_mm_quant_vnni
#include "ck_kquants.h"

int ck_matmul_vnni_emulated(ck_type t, const void *packed, int64_t rows, int64_t cols,
                            const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const ck_traits *tr = ck_traits_of(t);
    if (!ck_isa_cpu_has(CK_ISA_AVX2) || !tr || !tr->quant_act) return 0;
    if (r1 > rows) r1 = rows;
    if (r0 >= r1 || n <= 0) return 1;
    if (tr->kpanels) ck_mm_kp_vnni_emulated(t, packed, rows, cols, act, n, y, ldy, r0, r1);  // kquant_vnni_emu.c
    else ck_mm_quant_vnni_emulated(t, packed, rows, cols, act, n, y, ldy, r0, r1);
    return 1;
}
