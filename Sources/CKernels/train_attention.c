// Pieces of a transformer layer's backward pass for training a transformer exit block (issue 6,
// block (b)): rotary embedding and its inverse, causal softmax forward/backward over score rows,
// and the SwiGLU backward. The products around them are ck_sgemm calls.
#include "ck_train.h"
#include <math.h>

void ck_train_rope(float *x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride, int64_t pos0,
                   float base, int neox, int inverse) {
    const int64_t half = head_dim / 2;
    for (int64_t j = 0; j < n; j++) {
        const double pos = (double)(pos0 + j);
        for (int64_t i = 0; i < half; i++) {
            // Same angles as ck_rope (double, then rounded), so forward matches the engine bit for bit.
            const double theta = pos * pow((double)base, -2.0 * (double)i / (double)head_dim);
            const float c = (float)cos(theta);
            const float s = inverse ? -(float)sin(theta) : (float)sin(theta);
            for (int64_t h = 0; h < heads; h++) {
                float *v = x + j * row_stride + h * head_dim;
                const int64_t a = neox ? i : 2 * i;
                const int64_t b = neox ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

void ck_train_causal_softmax(float *s, int64_t n, int64_t ld, int64_t pos0, float scale) {
    for (int64_t i = 0; i < n; i++) {
        float *row = s + i * ld;
        const int64_t span = pos0 + i + 1;
        float mx = -INFINITY;
        for (int64_t j = 0; j < span; j++) mx = row[j] * scale > mx ? row[j] * scale : mx;
        double z = 0.0;
        for (int64_t j = 0; j < span; j++) {
            row[j] = expf(row[j] * scale - mx);
            z += row[j];
        }
        const float inv = (float)(1.0 / z);
        for (int64_t j = 0; j < span; j++) row[j] *= inv;
        for (int64_t j = span; j < ld && j < pos0 + n; j++) row[j] = 0.0f;
    }
}

void ck_train_causal_softmax_backward(const float *p, float *dp, int64_t n, int64_t ld, int64_t pos0, float scale) {
    for (int64_t i = 0; i < n; i++) {
        const float *pr = p + i * ld;
        float *dr = dp + i * ld;
        const int64_t span = pos0 + i + 1;
        double dot = 0.0;
        for (int64_t j = 0; j < span; j++) dot += (double)pr[j] * (double)dr[j];
        for (int64_t j = 0; j < span; j++) dr[j] = scale * pr[j] * (dr[j] - (float)dot);
        for (int64_t j = span; j < ld && j < pos0 + n; j++) dr[j] = 0.0f;
    }
}

void ck_train_swiglu(const float *gu, float *out, int64_t n, int64_t f) {
    for (int64_t r = 0; r < n; r++) {
        const float *g = gu + r * 2 * f, *u = g + f;
        float *o = out + r * f;
        for (int64_t i = 0; i < f; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void ck_train_swiglu_backward(const float *gu, const float *dout, float *dgu, int64_t n, int64_t f) {
    for (int64_t r = 0; r < n; r++) {
        const float *g = gu + r * 2 * f, *u = g + f, *d = dout + r * f;
        float *dg = dgu + r * 2 * f, *du = dg + f;
        for (int64_t i = 0; i < f; i++) {
            const float sg = 1.0f / (1.0f + expf(-g[i]));
            const float silu = g[i] * sg;
            du[i] = d[i] * silu;
            dg[i] = d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}
