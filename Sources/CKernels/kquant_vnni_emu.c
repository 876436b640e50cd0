// The K-quant AVX-512 VNNI kernel compiled again with vpdpbusd emulated by AVX2, so the tests
// check that code on CPUs without AVX-512 too (ck_matmul_vnni_emulated).
#define CK_VNNI_EMULATE 1
#include "kquant_avx512.c"
