// Dense f32 -> f64 accumulation for closed-form fits (calibration's ridge regression).
#include "ckernels.h"

enum { GRAM_BLOCK = 64 };

void ck_gram_accumulate(const float *a, int64_t lda, int64_t da, const float *b, int64_t ldb, int64_t db,
                        int64_t n, double *c, int64_t i0, int64_t i1) {
    // Rows are transposed in blocks so the inner loop is a contiguous dot product over rows.
    float at[GRAM_BLOCK], bt[GRAM_BLOCK * 8];
    for (int64_t r0 = 0; r0 < n; r0 += GRAM_BLOCK) {
        const int64_t m = (n - r0) < GRAM_BLOCK ? (n - r0) : GRAM_BLOCK;
        for (int64_t i = i0; i < i1; i++) {
            for (int64_t r = 0; r < m; r++) at[r] = a[(r0 + r) * lda + i];
            double *ci = c + i * db;
            int64_t j = 0;
            for (; j + 8 <= db; j += 8) {
                for (int64_t r = 0; r < m; r++)
                    for (int64_t q = 0; q < 8; q++) bt[q * GRAM_BLOCK + r] = b[(r0 + r) * ldb + j + q];
                for (int64_t q = 0; q < 8; q++) {
                    double s = 0;
                    const float *col = bt + q * GRAM_BLOCK;
                    for (int64_t r = 0; r < m; r++) s += (double)at[r] * (double)col[r];
                    ci[j + q] += s;
                }
            }
            for (; j < db; j++) {
                double s = 0;
                for (int64_t r = 0; r < m; r++) s += (double)at[r] * (double)b[(r0 + r) * ldb + j];
                ci[j] += s;
            }
        }
    }
}
