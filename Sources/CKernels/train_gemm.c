// f32 matrix products for training exit blocks. The frozen LM head (vocab x d) dominates a step:
// logits = Y E^T (an "NT" product: dot products along contiguous rows) and dY = dL E (an "NN"
// product: rows of E scaled and summed). Each shape gets its own AVX-512 kernel:
//  - NT: 4x4 tiles of dot products (16 accumulators), reduced together by one transpose-add tree;
//  - NN / TN: register tiles of up to 8 rows x 32 columns updated by outer products, k blocked so
//    the rows of B stay in cache.
// and an AVX2 twin of each (3x4 NT tiles, 6x16 NN tiles), for CPUs without AVX-512: the portable
// loops re-read all of B for every row of A, which made a training step 20x slower there.
// Threads split C into blocks (ck_sgemm's i/j ranges); nothing here allocates.
#include "ck_train.h"
#include "ckernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_HAVE_X86 1
#define CK_T512 __attribute__((target("avx512f,fma")))
#define CK_T256 __attribute__((target("avx2,fma")))
#define CK_CLONES_T __attribute__((target_clones("avx2", "default")))
#else
#define CK_HAVE_X86 0
#define CK_CLONES_T
#endif

#define CK_INLINE inline __attribute__((always_inline))

/// The NT cache blocking every ISA shares: JB rows of B (kept in L2) against IB rows of A (kept in L1),
/// in MR x NR tiles, each computed by TILE(a, lda, b, ldb, k, beta, c, ldc, ni, nj).
#define CK_NT_BLOCKS(IB, JB, MR, NR, TILE)                                                          \
    for (int64_t jb = j0; jb < j1; jb += (JB)) {                                                    \
        const int64_t je = j1 - jb < (JB) ? j1 : jb + (JB);                                         \
        for (int64_t ib = i0; ib < i1; ib += (IB)) {                                                \
            const int64_t ie = i1 - ib < (IB) ? i1 : ib + (IB);                                     \
            for (int64_t j = jb; j < je; j += (NR)) {                                               \
                const int nj = je - j < (NR) ? (int)(je - j) : (NR);                                \
                for (int64_t i = ib; i < ie; i += (MR)) {                                           \
                    const int ni = ie - i < (MR) ? (int)(ie - i) : (MR);                            \
                    TILE(a + i * lda, lda, b + j * ldb, ldb, k, beta, c + i * ldc + j, ldc, ni, nj); \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

/// Rows i0..i1 of one NN column block in tiles of BIG, 4, 2 and 1 rows (constants, so each inlined
/// tile keeps its accumulators in registers): TILE(mr) computes the tile at `ap` (A) and `cp` (C).
#define CK_NN_ROW_TILES(BIG, TILE)                       \
    for (int64_t i = i0; i < i1;) {                       \
        const int64_t rem = i1 - i;                       \
        const float *ap = a + i * ars + p0 * acs;         \
        float *cp = c + i * ldc + j;                      \
        if (rem >= (BIG)) {                               \
            TILE(BIG);                                    \
            i += (BIG);                                   \
        } else if (rem >= 4) {                            \
            TILE(4);                                      \
            i += 4;                                       \
        } else if (rem >= 2) {                            \
            TILE(2);                                      \
            i += 2;                                       \
        } else {                                          \
            TILE(1);                                      \
            i += 1;                                       \
        }                                                 \
    }

static CK_INLINE float at_a(const float *a, int64_t lda, int ta, int64_t i, int64_t p) {
    return ta ? a[p * lda + i] : a[i * lda + p];
}

static CK_INLINE float at_b(const float *b, int64_t ldb, int tb, int64_t p, int64_t j) {
    return tb ? b[j * ldb + p] : b[p * ldb + j];
}

void ck_sgemm_ref(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++) s += (double)at_a(a, lda, ta, i, p) * (double)at_b(b, ldb, tb, p, j);
            float *cv = c + i * ldc + j;
            *cv = (beta == 0.0f ? 0.0f : beta * *cv) + (float)s;
        }
    }
}

int64_t ck_sgemm_col_granule(void) { return 32; }

/// Portable loops (any CPU; and ta && tb everywhere). Row-wise axpy when B's rows are contiguous.
CK_CLONES_T
static void gemm_portable(int ta, int tb, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                          float beta, float *c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    for (int64_t i = i0; i < i1; i++) {
        float *cr = c + i * ldc;
        if (!tb) {
            for (int64_t j = j0; j < j1; j++) cr[j] = beta == 0.0f ? 0.0f : beta * cr[j];
            for (int64_t p = 0; p < k; p++) {
                const float av = at_a(a, lda, ta, i, p);
                const float *br = b + p * ldb;
                for (int64_t j = j0; j < j1; j++) cr[j] += av * br[j];
            }
        } else {
            for (int64_t j = j0; j < j1; j++) {
                float s = 0.0f;
                if (!ta) {
                    // 16 partial sums, so the compiler can vectorize the dot product (float sums
                    // are not reassociated otherwise).
                    const float *ar = a + i * lda, *br = b + j * ldb;
                    float part[16] = {0};
                    int64_t p = 0;
                    for (; p + 16 <= k; p += 16) {
                        for (int t = 0; t < 16; t++) part[t] += ar[p + t] * br[p + t];
                    }
                    for (; p < k; p++) s += ar[p] * br[p];
                    for (int t = 0; t < 16; t++) s += part[t];
                } else {
                    for (int64_t p = 0; p < k; p++) s += a[p * lda + i] * b[j * ldb + p];
                }
                cr[j] = (beta == 0.0f ? 0.0f : beta * cr[j]) + s;
            }
        }
    }
}

#if CK_HAVE_X86

/// Sums each of 16 vectors: lane 4r + q of the result is the sum of v[4r + q].
CK_T512 static CK_INLINE __m512 reduce16(const __m512 v[16]) {
    __m512 u[4];
    for (int g = 0; g < 4; g++) {
        const __m512 *w = v + 4 * g;
        // Per 128-bit chunk: [w0 0+2, w1 0+2, w0 1+3, w1 1+3], then pairs of pairs -> chunk sums of w0..w3.
        const __m512 s0 = _mm512_add_ps(_mm512_unpacklo_ps(w[0], w[1]), _mm512_unpackhi_ps(w[0], w[1]));
        const __m512 s1 = _mm512_add_ps(_mm512_unpacklo_ps(w[2], w[3]), _mm512_unpackhi_ps(w[2], w[3]));
        const __m512d d0 = _mm512_castps_pd(s0), d1 = _mm512_castps_pd(s1);
        // (Moved as f64 pairs, added as f32.)
        u[g] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d0, d1)), _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d1)));
    }
    // Chunk c of u[g] holds partial sums; sum the four chunks of each u[g] into chunk g.
    const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
}

/// One 4x4 tile of C = beta C + A B^T (ni <= 4 rows of A from ap, nj <= 4 rows of B from bp).
CK_T512 static CK_INLINE void nt_tile(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k,
                                      float beta, float *c, int64_t ldc, int ni, int nj) {
    const int64_t kfull = k & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1u);
    const float *ap[4], *bp[4];
    for (int r = 0; r < 4; r++) ap[r] = a + (r < ni ? r : 0) * lda;
    for (int q = 0; q < 4; q++) bp[q] = b + (q < nj ? q : 0) * ldb;
    __m512 acc[16];
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kfull; p += 16) {
        __m512 av[4];
        for (int r = 0; r < 4; r++) av[r] = _mm512_loadu_ps(ap[r] + p);
        for (int q = 0; q < 4; q++) {
            const __m512 bv = _mm512_loadu_ps(bp[q] + p);
            for (int r = 0; r < 4; r++) acc[4 * r + q] = _mm512_fmadd_ps(av[r], bv, acc[4 * r + q]);
        }
    }
    if (tail) {
        __m512 av[4];
        for (int r = 0; r < 4; r++) av[r] = _mm512_maskz_loadu_ps(tail, ap[r] + kfull);
        for (int q = 0; q < 4; q++) {
            const __m512 bv = _mm512_maskz_loadu_ps(tail, bp[q] + kfull);
            for (int r = 0; r < 4; r++) acc[4 * r + q] = _mm512_fmadd_ps(av[r], bv, acc[4 * r + q]);
        }
    }
    float out[16];
    _mm512_storeu_ps(out, reduce16(acc));
    for (int r = 0; r < ni; r++) {
        float *cr = c + r * ldc;
        for (int q = 0; q < nj; q++) cr[q] = (beta == 0.0f ? 0.0f : beta * cr[q]) + out[4 * r + q];
    }
}

/// C = beta C + A B^T in blocks: JB rows of B (kept in L2) against IB rows of A (kept in L1), so
/// neither streams from further out once per 4x4 tile (A would otherwise be re-read from L2 for
/// every 4 rows of B: the head's logits were L2-bound).
CK_T512 static void gemm_nt_avx512(int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                                   float beta, float *c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    CK_NT_BLOCKS(16, 64, 4, 4, nt_tile)
}

/// One register tile of C (mr rows x 32 columns, masked) += A[mr x kc] B[kc x 32].
/// `start`: the first k block, where C is replaced by beta C instead of read.
CK_T512 static CK_INLINE void nn_tile(const int mr, const float *a, int64_t ars, int64_t acs,
                                      const float *b, int64_t ldb, int64_t kc, float *c, int64_t ldc,
                                      __mmask16 m0, __mmask16 m1, int start, float beta) {
    __m512 acc[8][2];
    for (int r = 0; r < mr; r++) {
        if (start && beta == 0.0f) {
            acc[r][0] = _mm512_setzero_ps();
            acc[r][1] = _mm512_setzero_ps();
        } else {
            acc[r][0] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            acc[r][1] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
            if (start) {
                acc[r][0] = _mm512_mul_ps(acc[r][0], _mm512_set1_ps(beta));
                acc[r][1] = _mm512_mul_ps(acc[r][1], _mm512_set1_ps(beta));
            }
        }
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb);
        const __m512 b1 = _mm512_maskz_loadu_ps(m1, b + p * ldb + 16);
        for (int r = 0; r < mr; r++) {
            const __m512 av = _mm512_set1_ps(a[r * ars + p * acs]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
}

/// C = beta C + op(A) B with B's rows contiguous (NN, or TN when ta).
CK_T512 static void gemm_nn_avx512(int ta, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                                   float beta, float *c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    enum { KC = 256 };
    const int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1;
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = k - p0 < KC ? k - p0 : KC;
        const int start = p0 == 0;
        for (int64_t j = j0; j < j1; j += 32) {
            const int64_t w = j1 - j;
            const __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1u);
            const __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w <= 16 ? 0 : (__mmask16)((1u << (w - 16)) - 1u);
            const float *bp = b + p0 * ldb + j;
#define NN_TILE(mr) nn_tile(mr, ap, ars, acs, bp, ldb, kc, cp, ldc, m0, m1, start, beta)
            CK_NN_ROW_TILES(8, NN_TILE)
#undef NN_TILE
        }
    }
}


/// Lane q of the result is the sum of v[q]'s eight lanes.
CK_T256 static CK_INLINE __m128 reduce4_avx2(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    // Per 128-bit half: [v0 0+1, v0 2+3, v1 0+1, v1 2+3], then [v0 0-3, v1 0-3, v2 0-3, v3 0-3].
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/// One 3x4 tile of C = beta C + A B^T (ni <= 3 rows of A, nj <= 4 rows of B): 12 accumulators,
/// three rows of A and one of B fill the 16 registers.
CK_T256 static CK_INLINE void nt_tile_avx2(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k,
                                           float beta, float *c, int64_t ldc, int ni, int nj) {
    const int64_t kfull = k & ~(int64_t)7;
    const float *ap[3], *bp[4];
    for (int r = 0; r < 3; r++) ap[r] = a + (r < ni ? r : 0) * lda;
    for (int q = 0; q < 4; q++) bp[q] = b + (q < nj ? q : 0) * ldb;
    __m256 acc[3][4];
    for (int r = 0; r < 3; r++) {
        for (int q = 0; q < 4; q++) acc[r][q] = _mm256_setzero_ps();
    }
    for (int64_t p = 0; p < kfull; p += 8) {
        const __m256 a0 = _mm256_loadu_ps(ap[0] + p), a1 = _mm256_loadu_ps(ap[1] + p), a2 = _mm256_loadu_ps(ap[2] + p);
        for (int q = 0; q < 4; q++) {
            const __m256 bv = _mm256_loadu_ps(bp[q] + p);
            acc[0][q] = _mm256_fmadd_ps(a0, bv, acc[0][q]);
            acc[1][q] = _mm256_fmadd_ps(a1, bv, acc[1][q]);
            acc[2][q] = _mm256_fmadd_ps(a2, bv, acc[2][q]);
        }
    }
    for (int r = 0; r < ni; r++) {
        float out[4];
        _mm_storeu_ps(out, reduce4_avx2(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        float *cr = c + r * ldc;
        for (int q = 0; q < nj; q++) {
            float s = out[q];
            for (int64_t p = kfull; p < k; p++) s += ap[r][p] * bp[q][p];
            cr[q] = (beta == 0.0f ? 0.0f : beta * cr[q]) + s;
        }
    }
}

/// C = beta C + A B^T, blocked as the AVX-512 kernel: JB rows of B in L2 against IB rows of A in L1.
CK_T256 static void gemm_nt_avx2(int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                                 float beta, float *c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    CK_NT_BLOCKS(12, 64, 3, 4, nt_tile_avx2)
}

/// One register tile of C (mr <= 6 rows x 16 columns) += A[mr x kc] B[kc x 16].
/// `start`: the first k block, where C is replaced by beta C instead of read.
CK_T256 static CK_INLINE void nn_tile_avx2(const int mr, const float *a, int64_t ars, int64_t acs,
                                           const float *b, int64_t ldb, int64_t kc, float *c, int64_t ldc,
                                           int start, float beta) {
    __m256 acc[6][2];
    for (int r = 0; r < mr; r++) {
        if (start && beta == 0.0f) {
            acc[r][0] = _mm256_setzero_ps();
            acc[r][1] = _mm256_setzero_ps();
        } else {
            acc[r][0] = _mm256_loadu_ps(c + r * ldc);
            acc[r][1] = _mm256_loadu_ps(c + r * ldc + 8);
            if (start) {
                acc[r][0] = _mm256_mul_ps(acc[r][0], _mm256_set1_ps(beta));
                acc[r][1] = _mm256_mul_ps(acc[r][1], _mm256_set1_ps(beta));
            }
        }
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(b + p * ldb);
        const __m256 b1 = _mm256_loadu_ps(b + p * ldb + 8);
        for (int r = 0; r < mr; r++) {
            const __m256 av = _mm256_set1_ps(a[r * ars + p * acs]);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_ps(c + r * ldc, acc[r][0]);
        _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
    }
}

/// C = beta C + op(A) B with B's rows contiguous (NN, or TN when ta), in whole 16-column tiles;
/// the last columns (fewer than 16) take the portable loops.
CK_T256 static void gemm_nn_avx2(int ta, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                                 float beta, float *c, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    enum { KC = 256 };
    const int64_t ars = ta ? 1 : lda, acs = ta ? lda : 1;
    const int64_t jv = j0 + (j1 - j0) / 16 * 16;
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = k - p0 < KC ? k - p0 : KC;
        const int start = p0 == 0;
        for (int64_t j = j0; j < jv; j += 16) {
            const float *bp = b + p0 * ldb + j;
#define NN_TILE(mr) nn_tile_avx2(mr, ap, ars, acs, bp, ldb, kc, cp, ldc, start, beta)
            CK_NN_ROW_TILES(6, NN_TILE)
#undef NN_TILE
        }
    }
    if (jv < j1) gemm_portable(ta, 0, k, a, lda, b, ldb, beta, c, ldc, i0, i1, jv, j1);
}

#endif

void ck_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
              int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    (void)m;
    (void)n;
    if (i0 >= i1 || j0 >= j1) return;
#if CK_HAVE_X86
    // The ISA's NN/TN and NT kernels; A and B both transposed take the portable loops.
    const ck_isa isa = ck_isa_current();
    const int avx512 = isa == CK_ISA_AVX512VNNI;
    if (k > 0 && (avx512 || isa == CK_ISA_AVX2)) {
        if (!tb) {
            (avx512 ? gemm_nn_avx512 : gemm_nn_avx2)(ta, k, a, lda, b, ldb, beta, c, ldc, i0, i1, j0, j1);
            return;
        }
        if (!ta) {
            (avx512 ? gemm_nt_avx512 : gemm_nt_avx2)(k, a, lda, b, ldb, beta, c, ldc, i0, i1, j0, j1);
            return;
        }
    }
#endif
    gemm_portable(ta, tb, k, a, lda, b, ldb, beta, c, ldc, i0, i1, j0, j1);
}
