// Body of the SIMD attention kernels (included by attention_avx2.c and attention_avx512.c with the
// vector macros defined). Same arithmetic as ck_attention_ref, operation for operation, so results
// are bit-identical (up to the sign of exact zeros):
// - No FMA anywhere: the reference is built for targets without it (its AVX2 clone too), so each
//   product is rounded before its sum (V_MAC keeps the compiler from fusing them).
// - The queries that share a KV head (the heads of a group, over the rows) are lanes: each lane's
//   score q.k is the same sequential multiply-add chain over the head dimension as the scalar dot, and one
//   pass over each key row serves ATT_L queries. Keys go ATT_NK at a time (independent chains).
// - Softmax runs per query in scalar code with libm's expf, in the reference's order.
// - Each output element accumulates weight * v over positions in increasing order, as the
//   reference's axpy; positions outside a query's range (causal end, sliding window) weigh 0.
// Requires head_dim % ATT_W == 0 (the dispatcher checks).
//
// Macros: ATT_FN (name), ATT_TARGET, ATT_L (lanes = queries per pass), ATT_W (floats per vector),
// VT (vector type), V_ZERO(), V_LOAD(p), V_STORE(p, v), V_BCAST(p), V_MAC(a, b, c) = a*b+c rounded twice, V_MUL.
#include <math.h>

#define ATT_NK 8  // key rows per pass of the score loop

// Weighted values of M lanes (m <= M of them stored), S * ATT_W output columns per pass over the
// positions, all M * S sums in registers. Fewer lanes take more columns per pass: each pass reads a
// longer contiguous piece of every value row (decode's few queries would otherwise walk the whole
// cache once per 32 bytes).
static ATT_TARGET CK_ALWAYS_INLINE void att_values_ms(const int M, const int S, int m, const float *vg, int64_t kv_stride,
                                                      const float *sw, int64_t plo, int64_t phi, int64_t hd,
                                                      float *const *op) {
    for (int64_t i0 = 0; i0 < hd; i0 += S * ATT_W) {
        VT acc[ATT_L];
        for (int a = 0; a < M * S; a++) acc[a] = V_ZERO();
        for (int64_t pp = plo; pp < phi; pp++) {
            const float *vr = vg + pp * kv_stride + i0;
            const float *w = sw + (pp - plo) * ATT_L;
            // Rows are kv_stride apart: fetch a few ahead (decode's cache comes from L3 or DRAM).
            for (int s = 0; s < S * ATT_W; s += 16) __builtin_prefetch(vr + 6 * kv_stride + s, 0, 3);
            for (int l = 0; l < M; l++) {
                const VT wl = V_BCAST(w + l);
                for (int s = 0; s < S; s++) acc[s * M + l] = V_MAC(wl, V_LOAD(vr + s * ATT_W), acc[s * M + l]);
            }
        }
        for (int s = 0; s < S; s++)
            for (int l = 0; l < m; l++) V_STORE(op[l] + i0 + s * ATT_W, acc[s * M + l]);
    }
}

static ATT_TARGET void att_values(int m, const float *vg, int64_t kv_stride, const float *sw, int64_t plo,
                                  int64_t phi, int64_t hd, float *const *op) {
#define ATT_VALUES_FOR(M)                                                                          \
    if (m <= (M) && hd % (ATT_L / (M) * ATT_W) == 0) {                                             \
        att_values_ms((M), ATT_L / (M), m, vg, kv_stride, sw, plo, phi, hd, op);                   \
        return;                                                                                    \
    }
    ATT_VALUES_FOR(1)
    ATT_VALUES_FOR(2)
    ATT_VALUES_FOR(4)
#undef ATT_VALUES_FOR
    att_values_ms(ATT_L, 1, m, vg, kv_stride, sw, plo, phi, hd, op);
}

ATT_TARGET
void ATT_FN(const float *q, int64_t q_stride, int64_t n, int64_t pos0,
            const float *k, const float *v, int64_t kv_stride,
            int64_t n_heads, int64_t n_kv_heads, int64_t hd,
            float scale, int64_t window,
            float *out, int64_t out_stride, int64_t h0, int64_t h1, float *scratch) {
    const int64_t group = n_heads / n_kv_heads;
    float *qt = scratch;            // hd x ATT_L: queries transposed (lane = query)
    float *sw = scratch + hd * ATT_L;  // span x ATT_L: scores, then softmax weights (position-major)
    const VT vscale = V_SET1(scale);
    for (int64_t g = h0 / group; g * group < h1; g++) {
        const int64_t hs = h0 > g * group ? h0 : g * group;
        const int64_t he = h1 < (g + 1) * group ? h1 : (g + 1) * group;
        const int64_t nh = he - hs;
        const float *kg = k + g * hd, *vg = v + g * hd;
        const int64_t total = n * nh;
        for (int64_t t0 = 0; t0 < total; t0 += ATT_L) {
            const int m = (int)(total - t0 < ATT_L ? total - t0 : ATT_L);
            int64_t lo[ATT_L], len[ATT_L];
            const float *qp[ATT_L];
            float *op[ATT_L];
            for (int l = 0; l < m; l++) {
                const int64_t t = t0 + l, j = t / nh, h = hs + t % nh;
                len[l] = pos0 + j + 1;
                lo[l] = (window > 0 && len[l] > window) ? len[l] - window : 0;
                qp[l] = q + j * q_stride + h * hd;
                op[l] = out + j * out_stride + h * hd;
            }
            // Lanes are in row order, so the first has the lowest start and the last the highest end.
            const int64_t plo = lo[0], phi = len[m - 1];
            for (int64_t i = 0; i < hd; i++) {
                for (int l = 0; l < m; l++) qt[i * ATT_L + l] = qp[l][i];
                for (int l = m; l < ATT_L; l++) qt[i * ATT_L + l] = 0.0f;
            }

            // Scores.
            int64_t p = plo;
            for (; p + ATT_NK <= phi; p += ATT_NK) {
                const float *kp = kg + p * kv_stride;
                VT a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
                VT a4 = V_ZERO(), a5 = V_ZERO(), a6 = V_ZERO(), a7 = V_ZERO();
                for (int64_t i = 0; i < hd; i++) {
                    const VT qv = V_LOAD(qt + i * ATT_L);
                    a0 = V_MAC(qv, V_BCAST(kp + i), a0);
                    a1 = V_MAC(qv, V_BCAST(kp + kv_stride + i), a1);
                    a2 = V_MAC(qv, V_BCAST(kp + 2 * kv_stride + i), a2);
                    a3 = V_MAC(qv, V_BCAST(kp + 3 * kv_stride + i), a3);
                    a4 = V_MAC(qv, V_BCAST(kp + 4 * kv_stride + i), a4);
                    a5 = V_MAC(qv, V_BCAST(kp + 5 * kv_stride + i), a5);
                    a6 = V_MAC(qv, V_BCAST(kp + 6 * kv_stride + i), a6);
                    a7 = V_MAC(qv, V_BCAST(kp + 7 * kv_stride + i), a7);
                }
                float *s = sw + (p - plo) * ATT_L;
                V_STORE(s, V_MUL(a0, vscale));
                V_STORE(s + ATT_L, V_MUL(a1, vscale));
                V_STORE(s + 2 * ATT_L, V_MUL(a2, vscale));
                V_STORE(s + 3 * ATT_L, V_MUL(a3, vscale));
                V_STORE(s + 4 * ATT_L, V_MUL(a4, vscale));
                V_STORE(s + 5 * ATT_L, V_MUL(a5, vscale));
                V_STORE(s + 6 * ATT_L, V_MUL(a6, vscale));
                V_STORE(s + 7 * ATT_L, V_MUL(a7, vscale));
            }
            for (; p < phi; p++) {
                const float *kp = kg + p * kv_stride;
                VT a0 = V_ZERO();
                for (int64_t i = 0; i < hd; i++) a0 = V_MAC(V_LOAD(qt + i * ATT_L), V_BCAST(kp + i), a0);
                V_STORE(sw + (p - plo) * ATT_L, V_MUL(a0, vscale));
            }

            // Softmax per query, as the reference: max, exp and sum in position order, weight = e / sum.
            for (int l = 0; l < ATT_L; l++) {
                if (l >= m) {
                    for (int64_t pp = plo; pp < phi; pp++) sw[(pp - plo) * ATT_L + l] = 0.0f;
                    continue;
                }
                float maxv = -INFINITY;
                for (int64_t pp = lo[l]; pp < len[l]; pp++) {
                    const float s = sw[(pp - plo) * ATT_L + l];
                    if (s > maxv) maxv = s;
                }
                float sum = 0.0f;
                for (int64_t pp = lo[l]; pp < len[l]; pp++) {
                    float *s = sw + (pp - plo) * ATT_L + l;
                    *s = expf(*s - maxv);
                    sum += *s;
                }
                const float inv = 1.0f / sum;
                for (int64_t pp = plo; pp < phi; pp++) {
                    float *s = sw + (pp - plo) * ATT_L + l;
                    *s = (pp >= lo[l] && pp < len[l]) ? *s * inv : 0.0f;
                }
            }

            // Weighted values.
            att_values(m, vg, kv_stride, sw, plo, phi, hd, op);
        }
    }
}
