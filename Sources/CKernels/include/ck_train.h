// CKernels training kernels (ExitTraining): f32 matrix products and the element-wise passes of
// training an exit block (norms, SiLU, distillation loss, AdamW). The hot loops of training live
// here, so debug test builds train at full speed. Every fast path has a scalar reference.
#ifndef CK_TRAIN_H
#define CK_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- f32 matrix products (train_gemm.c) --------------------------------------------------------
// op(A) is m x k, op(B) is k x n, both row-major with leading dimensions lda / ldb:
//   op(A)[i][p] = ta ? a[p * lda + i] : a[i * lda + p]
//   op(B)[p][j] = tb ? b[j * ldb + p] : b[p * ldb + j]
// C[i][j] = beta * C[i][j] + sum_p op(A)[i][p] * op(B)[p][j]   (beta == 0: C is not read).

/// Scalar reference over all of C (accumulates in double).
void ck_sgemm_ref(int ta, int tb, int64_t m, int64_t n, int64_t k,
                  const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *c, int64_t ldc);

/// The block C[i0..i1)[j0..j1) only, so threads can split C. AVX-512 when the CPU has it
/// (and ck_isa_current() allows it), portable loops otherwise. ta && tb is supported but slow.
void ck_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k,
              const float *a, int64_t lda, const float *b, int64_t ldb,
              float beta, float *c, int64_t ldc,
              int64_t i0, int64_t i1, int64_t j0, int64_t j1);

/// Column granule that keeps ck_sgemm's fast path aligned when threads split j (NN / TN products).
int64_t ck_sgemm_col_granule(void);

// ---- Element-wise passes (train_ops.c) ----------------------------------------------------------

/// y = x * inv_rms(x) * w for n rows of dim; inv_rms[j] (may be NULL) receives 1 / rms of row j.
void ck_train_rmsnorm(const float *x, const float *w, float *y, float *inv_rms,
                      int64_t n, int64_t dim, float eps);
/// Backward of ck_train_rmsnorm given dy. dx (may be NULL) is overwritten; dw (may be NULL) is
/// accumulated (+=) over the n rows.
void ck_train_rmsnorm_backward(const float *x, const float *w, const float *inv_rms, const float *dy,
                               float *dx, float *dw, int64_t n, int64_t dim);

/// y = silu(x) = x * sigmoid(x) over n values.
void ck_train_silu(const float *x, float *y, int64_t n);
/// dx = dy * silu'(x) over n values.
void ck_train_silu_backward(const float *x, const float *dy, float *dx, int64_t n);

/// How the mass the teacher's top-k leaves out enters the KL divergence.
typedef enum {
    /// The student's and teacher's remaining mass are one extra category each (the KL of the
    /// coarsened (k + 1)-way distributions): keeps the teacher's confidence.
    CK_TAIL_BUCKET = 0,
    /// The teacher's top-k is renormalised to sum to 1; the student is pushed to put all its mass there.
    CK_TAIL_RENORMALISE = 1,
} ck_tail_mode;

/// Per-row result of ck_distill_rows.
typedef struct {
    float loss;        // kl_weight * KL + ce_weight * CE for the row (unscaled)
    float kl;          // KL(teacher || student) under the tail mode
    float max_prob;    // the student's top softmax probability
    int32_t argmax;    // the student's top token
} ck_distill_row;

/// For rows [r0, r1) of logits (n x vocab): the distillation loss against the teacher's top-k
/// (ids n x k, probabilities n x k, top-1 ids n; ids in a row must be distinct), written to out[r].
/// With grad_scale != 0 the row's logits are overwritten with grad_scale * d loss / d logits.
void ck_distill_rows(float *logits, int64_t vocab, const int32_t *ids, const float *probs, int64_t k,
                     const int32_t *top1, float kl_weight, float ce_weight, ck_tail_mode tail,
                     float grad_scale, ck_distill_row *out, int64_t r0, int64_t r1);
/// Scalar reference of ck_distill_rows (libm exp/log, double sums).
void ck_distill_rows_ref(float *logits, int64_t vocab, const int32_t *ids, const float *probs, int64_t k,
                         const int32_t *top1, float kl_weight, float ce_weight, ck_tail_mode tail,
                         float grad_scale, ck_distill_row *out, int64_t r0, int64_t r1);

/// The k most probable tokens of each of rows [r0, r1) of logits (n x vocab), descending (ties: lower
/// id first), with their softmax probabilities over the whole vocabulary (k <= vocab).
void ck_topk_softmax(const float *logits, int64_t vocab, int64_t k, int32_t *ids, float *probs,
                     int64_t r0, int64_t r1);

/// One AdamW step on n parameters: m, v are the moment buffers; weight decay is decoupled
/// (p -= lr * decay * p; call per parameter group to decay some groups only).
/// c1 = 1 - beta1^t, c2 = 1 - beta2^t (bias corrections).
void ck_train_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                    float beta2, float eps, float decay, float c1, float c2);

// ---- Transformer-layer pieces (train_attention.c) ---------------------------------------------

/// Rotary embedding in place, as ck_rope (same angles and pair conventions); inverse != 0 rotates
/// by -theta instead (the transpose, for the backward pass).
void ck_train_rope(float *x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride, int64_t pos0,
                   float base, int neox, int inverse);
/// Scores to probabilities in place: row i (position pos0 + i) = softmax(scale * s[i][0 ..= pos0 + i]),
/// later columns (up to pos0 + n) set to 0. Rows have stride ld.
void ck_train_causal_softmax(float *s, int64_t n, int64_t ld, int64_t pos0, float scale);
/// dp (d loss / d probabilities) to d loss / d raw scores in place, given the probabilities p.
void ck_train_causal_softmax_backward(const float *p, float *dp, int64_t n, int64_t ld, int64_t pos0, float scale);
/// out[r] = silu(gate[r]) * up[r], where row r of gu is gate (f values) then up (f values).
void ck_train_swiglu(const float *gu, float *out, int64_t n, int64_t f);
/// d loss / d gu (same layout) from d loss / d out.
void ck_train_swiglu_backward(const float *gu, const float *dout, float *dgu, int64_t n, int64_t f);

#ifdef __cplusplus
}
#endif
#endif
