import CKernels
import LLM

/// C = beta C + op(A) op(B) (see ck_train.h) with C split across the pool along its larger
/// dimension: the head's vocabulary for logits, the model width for the head's transpose.
package func parallelGemm(_ pool: ThreadPool, transposeA ta: Bool = false, transposeB tb: Bool = false,
                  m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let (ta32, tb32): (Int32, Int32) = (ta ? 1 : 0, tb ? 1 : 0)
    let (m64, n64, k64) = (Int64(m), Int64(n), Int64(k))
    if n >= m {
        // NT products reduce 4 columns at a time; the others fill 32-column register tiles.
        let granule = tb ? 4 : Int(ck_sgemm_col_granule())
        pool.parallelRanges(total: n, granule: granule) { r in
            ck_sgemm(ta32, tb32, m64, n64, k64, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc),
                     0, m64, Int64(r.lowerBound), Int64(r.upperBound))
        }
    } else {
        pool.parallelRanges(total: m, granule: 8) { r in
            ck_sgemm(ta32, tb32, m64, n64, k64, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc),
                     Int64(r.lowerBound), Int64(r.upperBound), 0, n64)
        }
    }
}
