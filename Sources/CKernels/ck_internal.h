// Internal declarations shared by the CKernels sources (not part of the public API).
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include "ckernels.h"
#include <string.h>

#define CK_QK 32    // elements per quantized block (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)
#define CK_PANEL 8  // weight rows per packed panel = row granule of quantized types
#define CK_NISA 3

#define CK_ALWAYS_INLINE inline __attribute__((always_inline))
#define CK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CK_TARGET_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))

// ---- Packed layout of quantized weights ------------------------------------------------------
// Rows are grouped in panels of CK_PANEL rows (the last panel zero-padded). A panel is its
// nb = cols/32 column blocks in order, each block (ck_panel_block_bytes) holding the 8 rows':
//   quants: QB bytes, split in 4-byte "steps" interleaved over rows, so one 32-byte load gives
//           the same 4 consecutive bytes of all 8 rows (lane r = row r):
//           Q8_0 (QB = 256): chunk k (0..7), lane r = row r's qs[4k..4k+3]  (elements 4k..4k+3)
//           Q4_x (QB = 128): chunk c (0..3), lane r = row r's qs[4c..4c+3]: low nibbles are
//                            elements 4c..4c+3, high nibbles elements 16+4c..16+4c+3.
//           Q5_x (QB = 128): as Q4_x, the fifth bits apart (qh below).
//   qh:     Q5_x only: 8 u32, lane r = row r's qh transposed so that chunk c's fifth bits are one
//           shift away: bit 8i + c = qh bit 4c + i (element 4c + i, low nibble of byte i),
//           bit 8i + 4 + c = qh bit 16 + 4c + i (element 16 + 4c + i, high nibble of byte i).
//   d:      8 f16 (the GGUF scale bits of rows 0..7)
//   m:      8 f16 (Q4_1 / Q5_1 only)
// So a thread's row range (whole panels) is one sequential stream with the same bytes as GGUF.
static inline int ck_is_q5(ck_type t) { return t == CK_Q5_0 || t == CK_Q5_1; }
static inline int ck_has_min(ck_type t) { return t == CK_Q4_1 || t == CK_Q5_1; }
static inline size_t ck_panel_qbytes(ck_type t) { return t == CK_Q8_0 ? 256 : 128; }
static inline size_t ck_panel_d_offset(ck_type t) { return ck_panel_qbytes(t) + (ck_is_q5(t) ? 32 : 0); }
static inline size_t ck_panel_block_bytes(ck_type t) {
    return ck_panel_d_offset(t) + 16 + (ck_has_min(t) ? 16 : 0);
}
/// The transposed qh of the panel layout (bit 8i + c <- bit 4c + i, bit 8i + 4 + c <- bit 16 + 4c + i).
static inline uint32_t ck_q5_qh_transpose(uint32_t qh) {
    uint32_t o = 0;
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 4; i++) {
            o |= ((qh >> (4 * c + i)) & 1u) << (8 * i + c);
            o |= ((qh >> (16 + 4 * c + i)) & 1u) << (8 * i + 4 + c);
        }
    return o;
}
static inline size_t ck_panel_bytes(ck_type t, int64_t cols) {
    return (size_t)(cols / CK_QK) * ck_panel_block_bytes(t);
}

// ---- Activation layout for quantized weights (like ggml's Q8_1) -------------------------------
// One row of `cols` values: int8 q[cols] | f32 d[nb] | f32 s[nb] | i32 sum[nb], padded to 32 bytes.
// x ~= q * d per block; sum = sum of the block's q; s = d * sum (for Q4_0 / Q4_1 offsets).
static inline size_t ck_qact_row_bytes(int64_t cols) {
    size_t b = (size_t)cols + 12 * (size_t)(cols / CK_QK);
    return (b + 31) & ~(size_t)31;
}
typedef struct {
    const int8_t *q;
    const float *d, *s;
    const int32_t *sum;
} ck_qact_row;
static inline ck_qact_row ck_qact_at(const void *act, int64_t cols, int64_t j) {
    const uint8_t *p = (const uint8_t *)act + (size_t)j * ck_qact_row_bytes(cols);
    int64_t nb = cols / CK_QK;
    ck_qact_row r;
    r.q = (const int8_t *)p;
    r.d = (const float *)(p + cols);
    r.s = r.d + nb;
    r.sum = (const int32_t *)(r.s + nb);
    return r;
}

// ---- Kernel signatures ------------------------------------------------------------------------
typedef void (*ck_matmul_fn)(ck_type t, const void *packed, int64_t rows, int64_t cols,
                             const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1);
typedef void (*ck_row_fn)(const void *src, float *dst, int64_t n);
typedef void (*ck_qrow_fn)(const float *src, void *dst, int64_t n);
typedef void (*ck_act_fn)(const float *x, int64_t cols, void *dst);  // one activation row

// Activation formats of ck_matmul: f32 as given, int8 blocks of 32 (ck_qact_*), K-quant rows (ck_q8k_*).
enum { CK_ACT_F32 = 0, CK_ACT_Q8 = 1, CK_ACT_Q8K = 2 };

// Per-format traits: adding a format (e.g. a K-quant) means one row in the table in types.c.
typedef struct {
    ck_type type;
    int64_t block;           // elements per block
    size_t block_bytes;      // GGUF bytes per block
    int quant_act;           // CK_ACT_*: the activation format of ck_matmul
    int64_t granule;
    ck_row_fn dequant_ref;
    ck_qrow_fn quant_ref;
    ck_row_fn dequant[CK_NISA];   // NULL: use the next lower ISA
    ck_matmul_fn matmul[CK_NISA]; // NULL: use the next lower ISA
    int kpanels;             // K-quant: packed in K-quant panels (ck_kquants.h), not the 32-block ones
} ck_traits;

const ck_traits *ck_traits_of(ck_type t);  // NULL if unsupported
int ck_isa_cpu_has(ck_isa isa);

// Activation conversion (one row) per ISA.
void ck_qact_row_scalar(const float *x, int64_t cols, void *dst);
void ck_qact_row_avx2(const float *x, int64_t cols, void *dst);

// Reference row conversions (quant_ref.c).
void ck_deq_f32_ref(const void *s, float *d, int64_t n);
void ck_deq_f16_ref(const void *s, float *d, int64_t n);
void ck_deq_bf16_ref(const void *s, float *d, int64_t n);
void ck_deq_q4_0_ref(const void *s, float *d, int64_t n);
void ck_deq_q4_1_ref(const void *s, float *d, int64_t n);
void ck_deq_q8_0_ref(const void *s, float *d, int64_t n);
void ck_q_f32_ref(const float *s, void *d, int64_t n);
void ck_q_f16_ref(const float *s, void *d, int64_t n);
void ck_q_bf16_ref(const float *s, void *d, int64_t n);
void ck_q_q4_0_ref(const float *s, void *d, int64_t n);
void ck_q_q4_1_ref(const float *s, void *d, int64_t n);
void ck_q_q8_0_ref(const float *s, void *d, int64_t n);

// Fast row dequantization (quant_avx2.c).
void ck_deq_f16_avx2(const void *s, float *d, int64_t n);
void ck_deq_bf16_avx2(const void *s, float *d, int64_t n);
void ck_deq_q4_0_avx2(const void *s, float *d, int64_t n);
void ck_deq_q4_1_avx2(const void *s, float *d, int64_t n);
void ck_deq_q8_0_avx2(const void *s, float *d, int64_t n);

// Matrix kernels (matmul_*.c).
void ck_mm_float_scalar(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_quant_scalar(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_float_avx2(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_quant_avx2(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_quant_vnni(ck_type, const void *, int64_t, int64_t, const void *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_quant_f32act_scalar(ck_type, const void *, int64_t, int64_t, const float *, int64_t, float *, int64_t, int64_t, int64_t);
void ck_mm_quant_f32act_avx2(ck_type, const void *, int64_t, int64_t, const float *, int64_t, float *, int64_t, int64_t, int64_t);

// Element-wise ops and attention (ops_avx2.c, ops_avx512.c, attention_*.c); references in ops.c.
void ck_rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps);
void ck_gelu_mul_avx2(float *g, const float *u, int64_t n);
void ck_gelu_mul_avx512(float *g, const float *u, int64_t n);
void ck_attention_avx2(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
                       const float *k, const float *v, int64_t kv_stride,
                       int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, float scale, int64_t window,
                       float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch);
void ck_attention_avx512(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
                         const float *k, const float *v, int64_t kv_stride,
                         int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, float scale, int64_t window,
                         float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch);

// gemv streams weights from DRAM: prefetching ~1 KiB ahead keeps more lines in flight than the
// hardware prefetcher alone (measured ~+20% on Zen 3). Not needed when a panel is reused (n > 1).
#define CK_PREFETCH_AHEAD 1024
static CK_ALWAYS_INLINE void prefetch_block(const uint8_t *w, int64_t bytes) {
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(w + CK_PREFETCH_AHEAD + o, 0, 3);
}

// Writes rows [lo, hi) of a panel-local accumulator (8 floats) to y (row0 = panel's first row).
static CK_ALWAYS_INLINE void ck_store_panel(float *y, const float *acc, int64_t row0, int64_t r0, int64_t r1) {
    int64_t lo = r0 > row0 ? r0 - row0 : 0;
    int64_t hi = r1 - row0 < CK_PANEL ? r1 - row0 : CK_PANEL;
    for (int64_t r = lo; r < hi; r++) y[row0 + r] = acc[r];
}

#endif
