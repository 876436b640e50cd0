// Element-wise ops and attention. Plain C written for auto-vectorization; each function gets an
// AVX2+FMA clone chosen at load time, with the portable version as the fallback.
#include "ck_internal.h"
#include <math.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__x86_64__) && defined(__clang__)
#define CK_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CK_CLONES
#endif

void ck_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void ck_map_large_allocations(size_t bytes) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
#endif
}

CK_CLONES
int64_t ck_count_outside(const float *x, int64_t n, float bound) {
    int64_t outside = 0;
    // !(a <= b) is true for NaN, so non-finite values are counted without a separate isnan test.
    for (int64_t i = 0; i < n; i++) outside += !(fabsf(x[i]) <= bound);
    return outside;
}

CK_CLONES
void ck_rmsnorm_ref(const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps) {
    for (int64_t j = 0; j < n; j++) {
        const float *xr = x + j * dim;
        float *yr = y + j * dim;
        float sum = 0.0f;
        for (int64_t i = 0; i < dim; i++) sum += xr[i] * xr[i];
        const float scale = 1.0f / sqrtf(sum / (float)dim + eps);
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * scale * w[i];
    }
}

void ck_rmsnorm(const float *x, const float *w, float *y, int64_t n, int64_t dim, float eps) {
    if (ck_isa_current() >= CK_ISA_AVX2) ck_rmsnorm_avx2(x, w, y, n, dim, eps);
    else ck_rmsnorm_ref(x, w, y, n, dim, eps);
}

void ck_rope(float *x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride,
             int64_t pos0, float base, int neox) {
    const int64_t half = head_dim / 2;
    float cosv[512], sinv[512];  // head_dim <= 1024
    for (int64_t j = 0; j < n; j++) {
        const double pos = (double)(pos0 + j);
        for (int64_t i = 0; i < half; i++) {
            const double theta = pos * pow((double)base, -2.0 * (double)i / (double)head_dim);
            cosv[i] = (float)cos(theta);
            sinv[i] = (float)sin(theta);
        }
        for (int64_t h = 0; h < heads; h++) {
            float *v = x + j * row_stride + h * head_dim;
            for (int64_t i = 0; i < half; i++) {
                const int64_t a = neox ? i : 2 * i;
                const int64_t b = neox ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * cosv[i] - x1 * sinv[i];
                v[b] = x0 * sinv[i] + x1 * cosv[i];
            }
        }
    }
}

CK_CLONES
void ck_silu_mul(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

// GELU with the tanh approximation (Gemma's gelu_pytorch_tanh). Written as x * sigmoid(2u), which
// equals 0.5 x (1 + tanh(u)) and needs one expf: the form stays finite for large |x|.
CK_CLONES
void ck_gelu_mul_ref(float *g, const float *u, int64_t n) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    for (int64_t i = 0; i < n; i++) {
        const float v = g[i];
        const float t = sqrt_2_over_pi * v * (1.0f + 0.044715f * v * v);
        g[i] = v / (1.0f + expf(-2.0f * t)) * u[i];
    }
}

void ck_gelu_mul(float *g, const float *u, int64_t n) {
    const ck_isa isa = ck_isa_current();
    if (isa >= CK_ISA_AVX512VNNI) ck_gelu_mul_avx512(g, u, n);
    else if (isa >= CK_ISA_AVX2) ck_gelu_mul_avx2(g, u, n);
    else ck_gelu_mul_ref(g, u, n);
}

// The angles of ck_rope, computed once per call: the frequencies once, cos and sin once per position.
void ck_rope_table(float *cs, int64_t n, int64_t pos0, int64_t head_dim, float base) {
    const int64_t half = head_dim / 2;
    double freq[512];  // head_dim <= 1024
    for (int64_t i = 0; i < half; i++) freq[i] = pow((double)base, -2.0 * (double)i / (double)head_dim);
    for (int64_t j = 0; j < n; j++) {
        const double pos = (double)(pos0 + j);
        float *c = cs + j * head_dim, *s = c + half;
        for (int64_t i = 0; i < half; i++) {
            const double theta = pos * freq[i];
            c[i] = (float)cos(theta);
            s[i] = (float)sin(theta);
        }
    }
}

// Not cloned for AVX2 on purpose: ck_rope's products and sums are not fused (no FMA in the baseline
// target), and this must round the same way.
void ck_rope_apply(float *x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride,
                   const float *cs, int neox) {
    const int64_t half = head_dim / 2;
    for (int64_t j = 0; j < n; j++) {
        const float *cosv = cs + j * head_dim, *sinv = cosv + half;
        for (int64_t h = 0; h < heads; h++) {
            float *v = x + j * row_stride + h * head_dim;
            if (neox) {
                for (int64_t i = 0; i < half; i++) {
                    const float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * cosv[i] - x1 * sinv[i];
                    v[i + half] = x0 * sinv[i] + x1 * cosv[i];
                }
            } else {
                for (int64_t i = 0; i < half; i++) {
                    const float x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = x0 * cosv[i] - x1 * sinv[i];
                    v[2 * i + 1] = x0 * sinv[i] + x1 * cosv[i];
                }
            }
        }
    }
}

CK_CLONES
void ck_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

// Inlined into each clone of ck_attention: a call per cached position would dominate decode.
static inline __attribute__((always_inline)) float dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline __attribute__((always_inline)) void axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

CK_CLONES
void ck_attention_ref(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
                  const float *k, const float *v, int64_t kv_stride,
                  int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                  float scale, int64_t window,
                  float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch) {
    const int64_t group = n_heads / n_kv_heads;
    for (int64_t h = h0; h < h1; h++) {
        const int64_t g = h / group;
        for (int64_t j = 0; j < n; j++) {
            const float *qh = q + j * q_stride + h * head_dim;
            const int64_t len = pos0 + j + 1;  // causal: positions 0 ... pos0 + j
            // a sliding window keeps the last `window` positions (llama.cpp masks p when pos - p >= window)
            const int64_t lo = (window > 0 && len > window) ? len - window : 0;
            float maxv = -INFINITY;
            for (int64_t p = lo; p < len; p++) {
                const float s = dot(qh, k + p * kv_stride + g * head_dim, head_dim) * scale;
                scratch[p] = s;
                if (s > maxv) maxv = s;
            }
            float sum = 0.0f;
            for (int64_t p = lo; p < len; p++) {
                scratch[p] = expf(scratch[p] - maxv);
                sum += scratch[p];
            }
            float *oh = out + j * out_stride + h * head_dim;
            memset(oh, 0, (size_t)head_dim * sizeof(float));
            const float inv = 1.0f / sum;
            for (int64_t p = lo; p < len; p++) axpy(oh, scratch[p] * inv, v + p * kv_stride + g * head_dim, head_dim);
        }
    }
}

int64_t ck_attention_scratch_floats(int64_t n, int64_t pos0, int64_t head_dim) {
    return 16 * (head_dim + pos0 + n);
}

void ck_attention(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
                  const float *k, const float *v, int64_t kv_stride,
                  int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                  float scale, int64_t window,
                  float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch) {
    const ck_isa isa = ck_isa_current();
    if (isa >= CK_ISA_AVX2 && head_dim % 8 == 0 && n > 0 && h1 > h0) {
        const int64_t group = n_heads / n_kv_heads;
        const int64_t per_kv = n * (h1 - h0 < group ? h1 - h0 : group);  // queries per pass set
        if (isa >= CK_ISA_AVX512VNNI && head_dim % 16 == 0 && per_kv > 8)
            ck_attention_avx512(q, q_stride, n, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, scale, window,
                                out, out_stride, h0, h1, scratch);
        else
            ck_attention_avx2(q, q_stride, n, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, scale, window,
                              out, out_stride, h0, h1, scratch);
        return;
    }
    ck_attention_ref(q, q_stride, n, pos0, k, v, kv_stride, n_heads, n_kv_heads, head_dim, scale, window,
                     out, out_stride, h0, h1, scratch);
}
