// CKernels: the engine's hot loops (quantized matrix products, attention, norms).
// Every fast path has a scalar reference in this library that tests compare against.
// Compiled with -O3 in every configuration so debug test builds still run the model at full speed.
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Weight formats; the values are ggml's type ids as stored in GGUF files.
typedef enum {
    CK_F32 = 0,
    CK_F16 = 1,
    CK_Q4_0 = 2,
    CK_Q4_1 = 3,
    CK_Q5_0 = 6,
    CK_Q5_1 = 7,
    CK_Q8_0 = 8,
    CK_Q2_K = 10,
    CK_Q3_K = 11,
    CK_Q4_K = 12,
    CK_Q5_K = 13,
    CK_Q6_K = 14,
    CK_BF16 = 30,
} ck_type;

/// Instruction-set paths; chosen once at run time, overridable for tests.
typedef enum { CK_ISA_SCALAR = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512VNNI = 2 } ck_isa;

/// 1 if `t` is a format this library implements.
int ck_type_supported(int t);
/// Elements per block (1 for float formats, 32 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, 256 for K-quants).
int64_t ck_block_elements(ck_type t);
/// Bytes of one GGUF-layout row of `cols` elements (cols must be a multiple of the block size).
size_t ck_row_bytes(ck_type t, int64_t cols);

/// The best path this CPU supports, the one in use, and a setter (clamped to what the CPU supports).
ck_isa ck_isa_best(void);
ck_isa ck_isa_current(void);
void ck_isa_set(ck_isa isa);
const char *ck_isa_name(ck_isa isa);

// ---- Conversion -------------------------------------------------------------------------------
float ck_f16_to_f32(uint16_t h);
uint16_t ck_f32_to_f16(float f);
float ck_bf16_to_f32(uint16_t h);
uint16_t ck_f32_to_bf16(float f);

/// Scalar reference: one GGUF-layout row of `n` elements to f32.
void ck_dequantize_row_ref(ck_type t, const void *src, float *dst, int64_t n);
/// Fast equivalent (same results) of ck_dequantize_row_ref.
void ck_dequantize_row(ck_type t, const void *src, float *dst, int64_t n);
/// Scalar reference quantization of f32 into GGUF layout (used to make test data and to write files).
void ck_quantize_row_ref(ck_type t, const float *src, void *dst, int64_t n);

// ---- Matrix products --------------------------------------------------------------------------
// A weight matrix W has `rows` rows of `cols` elements (GGUF layout: row r starts at r * ck_row_bytes).
// It is repacked once at load time into a kernel-owned layout. Activations X are `n` rows of `cols`
// f32 values, converted once per product into the kernel's activation format (int8 blocks for
// quantized weights). Y[j * ldy + r] = sum_c W[r][c] * X[j][c].
// Threads split the rows: ranges must start at a multiple of ck_row_granule.

size_t ck_packed_size(ck_type t, int64_t rows, int64_t cols);
void ck_pack(ck_type t, const void *src, int64_t rows, int64_t cols, void *dst);
int64_t ck_row_granule(ck_type t);

/// Bytes of one converted activation row for weights of type `t`.
size_t ck_act_row_bytes(ck_type t, int64_t cols);
/// Which activation format ck_convert_act makes for `t` (0: f32, 1: int8 blocks of 32, 2: int8 per
/// 256 values with block sums, for K-quants): weights of types with equal formats share one conversion.
int ck_act_format(ck_type t);
/// Converts `n` f32 rows (row stride `cols`) into consecutive activation rows at `dst`.
void ck_convert_act(ck_type t, const float *x, int64_t n, int64_t cols, void *dst);

/// Rows [r0, r1) of Y for all n activation rows, from packed weights and converted activations.
void ck_matmul(ck_type t, const void *packed, int64_t rows, int64_t cols,
               const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1);

/// As ck_matmul, with the f32 activations `x` used as they are (no int8 blocks): the product
/// ck_matmul_ref states, up to summation order. Slower; for runs that must not amplify small input
/// changes (a split model fed f16 boundary states). Float formats: the same as ck_matmul.
void ck_matmul_f32act(ck_type t, const void *packed, int64_t rows, int64_t cols,
                      const float *x, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1);

/// Scalar reference on GGUF-layout weights and f32 activations (all rows).
void ck_matmul_ref(ck_type t, const void *src, int64_t rows, int64_t cols,
                   const float *x, int64_t n, float *y, int64_t ldy);

// ---- Element-wise and attention ops (ops.c) ----------------------------------------------------

/// y = x / rms(x) * w, for n rows of `dim`. y may be x (in place); with dim = head_dim and n = heads
/// of one row it is the per-head norm of Gemma's queries and keys.
void ck_rmsnorm(const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps);
/// Scalar reference of ck_rmsnorm. The fast path normalizes several rows at once but sums each row's
/// squares in the same order with the same FMAs: its results are identical.
void ck_rmsnorm_ref(const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps);
/// Rotary embedding in place on n rows of `heads` heads of `head_dim`, row j at position pos0 + j.
/// neox = 0: adjacent pairs (2i, 2i+1) as GGUF llama; neox = 1: halves (i, i + head_dim/2).
void ck_rope(float *x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride,
             int64_t pos0, float base, int neox);
/// ck_rope in two steps, with the same results: the angles of n positions from pos0, once per call
/// (cs: n rows of head_dim floats, cos then sin of each pair), then their rotation of any heads.
void ck_rope_table(float *cs, int64_t n, int64_t pos0, int64_t head_dim, float base);
void ck_rope_apply(float *x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride,
                   const float *cs, int neox);
/// g = silu(g) * u, element-wise over n values.
void ck_silu_mul(float *g, const float *u, int64_t n);
/// g = gelu_tanh(g) * u, element-wise over n values (GELU with the tanh approximation, as Gemma).
void ck_gelu_mul(float *g, const float *u, int64_t n);
/// Scalar reference of ck_gelu_mul (libm's expf; the fast paths use a vector exp within a few ulp).
void ck_gelu_mul_ref(float *g, const float *u, int64_t n);
/// y += x over n values.
void ck_add(float *y, const float *x, int64_t n);
/// Returns freed heap memory to the system (glibc's malloc_trim; nothing elsewhere).
void ck_release_free_memory(void);
/// Serves allocations of at least `bytes` with their own mappings, returned to the system when freed
/// (glibc's M_MMAP_THRESHOLD; it otherwise rises to 32 MB and keeps freed buffers in the heap).
void ck_map_large_allocations(size_t bytes);
/// How many of n values are not within [-bound, bound]; NaN counts (validates untrusted states).
int64_t ck_count_outside(const float *x, int64_t n, float bound);
/// Causal GQA attention for heads [h0, h1) of n query rows at positions pos0..pos0+n-1.
/// q: n rows (stride q_stride) of n_heads*head_dim. K/V cache: position p of kv head g at
/// k[p * kv_stride + g * head_dim]. out: n rows (stride out_stride). scratch: at least
/// ck_attention_scratch_floats(n, pos0, head_dim) floats.
/// Scores are q.k * scale; window > 0 lets the query at position p see only (p - window, p], as a
/// sliding-window layer (llama.cpp masks p' when p - p' >= window); 0 is plain causal attention.
void ck_attention(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
                  const float *k, const float *v, int64_t kv_stride,
                  int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                  float scale, int64_t window,
                  float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch);
/// Scalar reference of ck_attention (one query at a time; scratch: pos0 + n floats). The SIMD paths
/// serve several queries per pass over the cache with the same operations in the same order: their
/// results are identical.
void ck_attention_ref(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
                      const float *k, const float *v, int64_t kv_stride,
                      int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                      float scale, int64_t window,
                      float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch);
/// Floats of scratch ck_attention needs for n query rows at pos0.
int64_t ck_attention_scratch_floats(int64_t n, int64_t pos0, int64_t head_dim);

/// A spin-wait hint for the thread pool (PAUSE on x86).
static inline void ck_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// ---- Dense accumulation (linalg.c) -------------------------------------------------------------

/// C[i][j] += sum_r A[r][i] * B[r][j] for rows r < n and i in [i0, i1) (C is da x db, row-major,
/// f64). A has `da` used columns (row stride lda), B `db` (row stride ldb). Threads split [i0, i1).
void ck_gram_accumulate(const float *a, int64_t lda, int64_t da, const float *b, int64_t ldb, int64_t db,
                        int64_t n, double *c, int64_t i0, int64_t i1);

// ---- Testing hooks (CKernels matmul_vnni_emu.c) ------------------------------------------------

/// ck_matmul through the AVX-512 VNNI kernel's code with vpdpbusd emulated exactly by AVX2, so
/// machines without AVX-512 can test that path. Quantized types only; returns 0 (and does
/// nothing) without AVX2 or for other types.
int ck_matmul_vnni_emulated(ck_type t, const void *packed, int64_t rows, int64_t cols,
                            const void *act, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif
#endif
