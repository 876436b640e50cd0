// Run-time instruction-set selection: detected once, overridable (tests loop over all paths).
#include "ck_internal.h"

static int g_best = -1;     // detected lazily; benign race (every thread computes the same value)
static int g_current = -1;

int ck_isa_cpu_has(ck_isa isa) {
    __builtin_cpu_init();
    switch (isa) {
    case CK_ISA_SCALAR: return 1;
    case CK_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    case CK_ISA_AVX512VNNI:
        // The VNNI path also uses AVX2/F16C instructions on 256-bit registers (needs AVX512VL).
        return ck_isa_cpu_has(CK_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
    }
    return 0;
}

ck_isa ck_isa_best(void) {
    int b = __atomic_load_n(&g_best, __ATOMIC_RELAXED);
    if (b < 0) {
        b = CK_ISA_SCALAR;
        if (ck_isa_cpu_has(CK_ISA_AVX2)) b = CK_ISA_AVX2;
        if (ck_isa_cpu_has(CK_ISA_AVX512VNNI)) b = CK_ISA_AVX512VNNI;
        __atomic_store_n(&g_best, b, __ATOMIC_RELAXED);
    }
    return (ck_isa)b;
}

ck_isa ck_isa_current(void) {
    int c = __atomic_load_n(&g_current, __ATOMIC_RELAXED);
    if (c < 0) {
        c = (int)ck_isa_best();
        __atomic_store_n(&g_current, c, __ATOMIC_RELAXED);
    }
    return (ck_isa)c;
}

void ck_isa_set(ck_isa isa) {
    int best = (int)ck_isa_best();
    int v = (int)isa;
    if (v < 0) v = 0;
    if (v > best) v = best;
    __atomic_store_n(&g_current, v, __ATOMIC_RELAXED);
}

const char *ck_isa_name(ck_isa isa) {
    switch (isa) {
    case CK_ISA_SCALAR: return "scalar";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512VNNI: return "avx512vnni";
    }
    return "unknown";
}
