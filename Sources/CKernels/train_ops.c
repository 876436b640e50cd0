// Element-wise passes of exit-block training: RMSNorm and SiLU forward/backward, AdamW, and the
// distillation loss over the full vocabulary (softmax of 49k logits per row: the one element-wise
// pass that costs as much as a small matrix product, so it gets an AVX-512 exp).
#include "ck_train.h"
#include "ckernels.h"
#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_HAVE_X86 1
#define CK_T512 __attribute__((target("avx512f,fma")))
#define CK_CLONES_O __attribute__((target_clones("avx2", "default")))
#else
#define CK_HAVE_X86 0
#define CK_CLONES_O
#endif

/// Largest teacher top-k a row may carry (stack buffers).
#define CK_MAX_TOPK 1024

void ck_train_rmsnorm(const float *x, const float *w, float *y, float *inv_rms, int64_t n, int64_t dim, float eps) {
    for (int64_t j = 0; j < n; j++) {
        const float *xr = x + j * dim;
        float *yr = y + j * dim;
        double sum = 0.0;
        for (int64_t i = 0; i < dim; i++) sum += (double)xr[i] * (double)xr[i];
        const float s = (float)(1.0 / sqrt(sum / (double)dim + (double)eps));
        if (inv_rms) inv_rms[j] = s;
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * s * w[i];
    }
}

void ck_train_rmsnorm_backward(const float *x, const float *w, const float *inv_rms, const float *dy,
                               float *dx, float *dw, int64_t n, int64_t dim) {
    for (int64_t j = 0; j < n; j++) {
        const float *xr = x + j * dim, *dyr = dy + j * dim;
        const float s = inv_rms[j];
        if (dx) {
            // y_i = x_i s w_i with s = (mean(x^2) + eps)^(-1/2): ds/dx_i = -s^3 x_i / dim.
            double dot = 0.0;
            for (int64_t i = 0; i < dim; i++) dot += (double)dyr[i] * (double)w[i] * (double)xr[i];
            const float coef = (float)(dot * (double)s * (double)s * (double)s / (double)dim);
            float *dxr = dx + j * dim;
            for (int64_t i = 0; i < dim; i++) dxr[i] = s * w[i] * dyr[i] - xr[i] * coef;
        }
        if (dw) {
            for (int64_t i = 0; i < dim; i++) dw[i] += dyr[i] * xr[i] * s;
        }
    }
}

void ck_train_silu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

void ck_train_silu_backward(const float *x, const float *dy, float *dx, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float sg = 1.0f / (1.0f + expf(-x[i]));
        dx[i] = dy[i] * sg * (1.0f + x[i] * (1.0f - sg));
    }
}

CK_CLONES_O
void ck_train_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                    float beta2, float eps, float decay, float c1, float c2) {
    const float inv_c1 = 1.0f / c1, inv_c2 = 1.0f / c2;
    for (int64_t i = 0; i < n; i++) {
        const float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
        const float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * inv_c1 / (sqrtf(vi * inv_c2) + eps) + decay * p[i]);
    }
}

// ---- Distillation loss -------------------------------------------------------------------------
// Student: log p = log_softmax(logits). Teacher: top-k (ids, probabilities t_i, T = sum t_i).
//   bucket:      q_i = t_i, rest mass r = 1 - T against the student's rest P = sum_{j not in top-k} p_j
//   renormalise: q_i = t_i / T, r = 0
// KL = sum_i q_i log(q_i / p_i) + r log(r / P);  CE = -log p_top1.
// d KL / d logit_j = p_j - q_j (j in top-k), p_j (1 - r / P) (otherwise);  d CE / d logit_j = p_j - [j = top1].

/// The teacher's targets for one row: q (k values) and the rest mass r.
static void teacher_targets(const float *probs, int64_t k, ck_tail_mode tail, float *q, double *rest) {
    double total = 0.0;
    for (int64_t i = 0; i < k; i++) total += probs[i];
    for (int64_t i = 0; i < k; i++) q[i] = tail == CK_TAIL_RENORMALISE ? (float)(probs[i] / total) : probs[i];
    *rest = tail == CK_TAIL_RENORMALISE ? 0.0 : (total < 1.0 ? 1.0 - total : 0.0);
}

/// The loss from the gathered top-k logits, max, log Z and the student's rest mass (in e^(l - max) units).
static float row_losses(const float *lk, const float *q, double rest, int64_t k, float ltop, float mx, double log_z,
                        double e_rest, float kl_weight, float ce_weight, float *kl_out) {
    double kl = 0.0;
    for (int64_t i = 0; i < k; i++) {
        if (q[i] > 0.0f) kl += (double)q[i] * (log((double)q[i]) - ((double)lk[i] - mx - log_z));
    }
    if (rest > 0.0) kl += rest * (log(rest) - (log(e_rest > 1e-300 ? e_rest : 1e-300) - log_z));
    const double ce = -((double)ltop - mx - log_z);
    *kl_out = (float)kl;
    return (float)(kl_weight * kl + ce_weight * ce);
}

/// Overwrites the row's e_j = exp(l_j - max) with grad_scale * d loss / d l_j.
static void row_gradient(float *l, int64_t vocab, const int32_t *ids, const float *q, double rest, int64_t k,
                         int32_t top1, double z, double e_rest, const float *lk, float mx, double log_z,
                         float kl_weight, float ce_weight, float gs) {
    const double rest_ratio = (rest > 0.0 && e_rest > 0.0) ? rest / (e_rest / z) : 0.0;
    const float tail_scale = (float)(gs * (kl_weight * (1.0 - rest_ratio) + ce_weight) / z);
    for (int64_t j = 0; j < vocab; j++) l[j] *= tail_scale;
    for (int64_t i = 0; i < k; i++) {
        const double p = exp((double)lk[i] - mx - log_z);
        l[ids[i]] = (float)(gs * (kl_weight * (p - q[i]) + ce_weight * p));
    }
    l[top1] -= gs * ce_weight;
}

#if CK_HAVE_X86
/// e^x for x <= 0 (inputs below -87 give 0): Cody-Waite reduction, degree-6 polynomial, scalef.
CK_T512 static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/// Max and argmax of the row, then e_j = exp(l_j - max) in place (when store) and their sum.
CK_T512 static double softmax_sums512(float *l, int64_t vocab, int store, float *max_out, int32_t *argmax_out) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= vocab; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(l + j));
    float mx = _mm512_reduce_max_ps(vmax);
    for (; j < vocab; j++) mx = l[j] > mx ? l[j] : mx;
    int32_t arg = 0;
    for (int64_t t = 0; t < vocab; t++) {
        if (l[t] == mx) {
            arg = (int32_t)t;
            break;
        }
    }
    const __m512 vm = _mm512_set1_ps(mx);
    double z = 0.0;
    for (j = 0; j < vocab;) {
        // Float partial sums over blocks of 1024, then double: float error stays ~1e-7 relative.
        const int64_t end = vocab - j < 1024 ? vocab : j + 1024;
        __m512 acc = _mm512_setzero_ps();
        for (; j + 16 <= end; j += 16) {
            const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(l + j), vm));
            if (store) _mm512_storeu_ps(l + j, e);
            acc = _mm512_add_ps(acc, e);
        }
        double part = (double)_mm512_reduce_add_ps(acc);
        for (; j < end; j++) {
            const float e = expf(l[j] - mx);
            if (store) l[j] = e;
            part += e;
        }
        z += part;
    }
    *max_out = mx;
    *argmax_out = arg;
    return z;
}
#endif

static double softmax_sums_portable(float *l, int64_t vocab, int store, float *max_out, int32_t *argmax_out) {
    float mx = l[0];
    int32_t arg = 0;
    for (int64_t j = 1; j < vocab; j++) {
        if (l[j] > mx) {
            mx = l[j];
            arg = (int32_t)j;
        }
    }
    double z = 0.0;
    for (int64_t j = 0; j < vocab; j++) {
        const float e = expf(l[j] - mx);
        if (store) l[j] = e;
        z += e;
    }
    *max_out = mx;
    *argmax_out = arg;
    return z;
}

void ck_distill_rows(float *logits, int64_t vocab, const int32_t *ids, const float *probs, int64_t k,
                     const int32_t *top1, float kl_weight, float ce_weight, ck_tail_mode tail,
                     float grad_scale, ck_distill_row *out, int64_t r0, int64_t r1) {
    float lk[CK_MAX_TOPK], q[CK_MAX_TOPK];
    if (k > CK_MAX_TOPK) k = CK_MAX_TOPK;
    for (int64_t r = r0; r < r1; r++) {
        float *l = logits + r * vocab;
        const int32_t *ri = ids + r * k;
        for (int64_t i = 0; i < k; i++) lk[i] = l[ri[i]];
        const float ltop = l[top1[r]];
        double rest;
        teacher_targets(probs + r * k, k, tail, q, &rest);
        float mx;
        int32_t arg;
        const int store = grad_scale != 0.0f;
#if CK_HAVE_X86
        const double z = ck_isa_current() == CK_ISA_AVX512VNNI ? softmax_sums512(l, vocab, store, &mx, &arg)
                                                               : softmax_sums_portable(l, vocab, store, &mx, &arg);
#else
        const double z = softmax_sums_portable(l, vocab, store, &mx, &arg);
#endif
        const double log_z = log(z);
        double e_top = 0.0;
        for (int64_t i = 0; i < k; i++) e_top += exp((double)lk[i] - mx);
        const double e_rest = z - e_top > 0.0 ? z - e_top : 0.0;
        out[r].loss = row_losses(lk, q, rest, k, ltop, mx, log_z, e_rest, kl_weight, ce_weight, &out[r].kl);
        out[r].max_prob = (float)(1.0 / z);
        out[r].argmax = arg;
        if (store) row_gradient(l, vocab, ri, q, rest, k, top1[r], z, e_rest, lk, mx, log_z, kl_weight, ce_weight, grad_scale);
    }
}

void ck_distill_rows_ref(float *logits, int64_t vocab, const int32_t *ids, const float *probs, int64_t k,
                         const int32_t *top1, float kl_weight, float ce_weight, ck_tail_mode tail,
                         float grad_scale, ck_distill_row *out, int64_t r0, int64_t r1) {
    float q[CK_MAX_TOPK];
    if (k > CK_MAX_TOPK) k = CK_MAX_TOPK;
    for (int64_t r = r0; r < r1; r++) {
        float *l = logits + r * vocab;
        const int32_t *ri = ids + r * k;
        double rest;
        teacher_targets(probs + r * k, k, tail, q, &rest);
        double mx = l[0];
        int32_t arg = 0;
        for (int64_t j = 1; j < vocab; j++) {
            if (l[j] > mx) {
                mx = l[j];
                arg = (int32_t)j;
            }
        }
        double z = 0.0;
        for (int64_t j = 0; j < vocab; j++) z += exp((double)l[j] - mx);
        const double log_z = log(z);
        // Student mass outside the teacher's top-k, summed directly over the complement.
        double p_rest = 0.0;
        for (int64_t j = 0; j < vocab; j++) {
            int inside = 0;
            for (int64_t i = 0; i < k; i++) inside |= ri[i] == j;
            if (!inside) p_rest += exp((double)l[j] - mx - log_z);
        }
        double kl = 0.0;
        for (int64_t i = 0; i < k; i++) {
            if (q[i] > 0.0f) kl += (double)q[i] * (log((double)q[i]) - ((double)l[ri[i]] - mx - log_z));
        }
        if (rest > 0.0) kl += rest * (log(rest) - log(p_rest > 1e-300 ? p_rest : 1e-300));
        const double ce = -((double)l[top1[r]] - mx - log_z);
        out[r].kl = (float)kl;
        out[r].loss = (float)(kl_weight * kl + ce_weight * ce);
        out[r].max_prob = (float)(1.0 / z);
        out[r].argmax = arg;
        if (grad_scale == 0.0f) continue;
        for (int64_t j = 0; j < vocab; j++) {
            const double p = exp((double)l[j] - mx - log_z);
            double g = ce_weight * (p - (j == top1[r] ? 1.0 : 0.0));
            int64_t slot = -1;
            for (int64_t i = 0; i < k; i++) {
                if (ri[i] == j) slot = i;
            }
            if (slot >= 0) {
                g += kl_weight * (p - q[slot]);
            } else {
                g += kl_weight * p * (1.0 - (rest > 0.0 && p_rest > 0.0 ? rest / p_rest : 0.0));
            }
            l[j] = (float)(grad_scale * g);
        }
    }
}

void ck_topk_softmax(const float *logits, int64_t vocab, int64_t k, int32_t *ids, float *probs,
                     int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const float *l = logits + r * vocab;
        int32_t *ri = ids + r * k;
        float *rp = probs + r * k;
        float mx = l[0];
        for (int64_t j = 1; j < vocab; j++) mx = l[j] > mx ? l[j] : mx;
        double z = 0.0;
        for (int64_t j = 0; j < vocab; j++) z += exp((double)l[j] - mx);
        // Insertion into a sorted list of the best k so far (k is small next to the vocabulary).
        int64_t count = 0;
        for (int64_t j = 0; j < vocab; j++) {
            const float v = l[j];
            if (count == k && v <= l[ri[k - 1]]) continue;
            int64_t at = count < k ? count : k - 1;
            while (at > 0 && l[ri[at - 1]] < v) {
                ri[at] = ri[at - 1];
                at--;
            }
            ri[at] = (int32_t)j;
            if (count < k) count++;
        }
        for (int64_t i = 0; i < k; i++) rp[i] = (float)(exp((double)l[ri[i]] - mx) / z);
    }
}
