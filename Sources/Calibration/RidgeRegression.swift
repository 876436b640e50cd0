import CKernels
import LLM

/// Closed-form ridge regression of targets T (n x d) on inputs X (n x d) with an unregularised
/// bias: centre both, solve (Xc'Xc + lambda I) A' = Xc'Tc by Cholesky, b = mean(T) - A mean(X).
/// lambda = strength * trace(Xc'Xc) / d, so one strength works whatever the states' scale.
public enum RidgeRegression {
    public struct Fit: Sendable {
        /// Row-major d x d: z_i = sum_j matrix[i * d + j] x_j + bias_i.
        public var matrix: [Float]
        public var bias: [Float]
    }

    public static func fit(inputs x: [Float], targets t: [Float], width d: Int, strength: Double = 1e-3,
                           pool: ThreadPool) -> Fit {
        let n = x.count / d
        precondition(n > 0 && x.count == n * d && t.count == n * d, "ridge: shapes")
        var xx = gram(x, x, rows: n, width: d, pool: pool)
        var xt = gram(x, t, rows: n, width: d, pool: pool)
        let meanX = columnMeans(x, rows: n, width: d), meanT = columnMeans(t, rows: n, width: d)
        // Centre: X'X - n mx mx', X'T - n mx mt'.
        var trace = 0.0
        for i in 0..<d {
            for j in 0..<d {
                xx[i * d + j] -= Double(n) * meanX[i] * meanX[j]
                xt[i * d + j] -= Double(n) * meanX[i] * meanT[j]
            }
            trace += xx[i * d + i]
        }
        let lambda = max(strength * trace / Double(d), 1e-12)
        for i in 0..<d { xx[i * d + i] += lambda }
        let solution = CholeskySolver.solve(xx, xt, size: d)  // d x d: row j = input j, column i = output i
        var matrix = [Float](repeating: 0, count: d * d)
        var bias = [Float](repeating: 0, count: d)
        for i in 0..<d {
            var b = meanT[i]
            for j in 0..<d {
                matrix[i * d + j] = Float(solution[j * d + i])
                b -= solution[j * d + i] * meanX[j]
            }
            bias[i] = Float(b)
        }
        return Fit(matrix: matrix, bias: bias)
    }

    /// A'B in f64 (d x d), rows of the output split across the pool.
    static func gram(_ a: [Float], _ b: [Float], rows n: Int, width d: Int, pool: ThreadPool) -> [Double] {
        var out = [Double](repeating: 0, count: d * d)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { op in
                    let (a, b, o) = (ap.baseAddress!, bp.baseAddress!, op.baseAddress!)
                    pool.parallelRanges(total: d) { range in
                        ck_gram_accumulate(a, Int64(d), Int64(d), b, Int64(d), Int64(d), Int64(n), o,
                                           Int64(range.lowerBound), Int64(range.upperBound))
                    }
                }
            }
        }
        return out
    }

    static func columnMeans(_ x: [Float], rows n: Int, width d: Int) -> [Double] {
        var sums = [Double](repeating: 0, count: d)
        x.withUnsafeBufferPointer { p in
            for r in 0..<n {
                for j in 0..<d { sums[j] += Double(p[r * d + j]) }
            }
        }
        return sums.map { $0 / Double(n) }
    }
}

/// Solves S X = B for a symmetric positive-definite S (size x size) and `size` right-hand columns.
enum CholeskySolver {
    static func solve(_ s: [Double], _ b: [Double], size n: Int) -> [Double] {
        var l = s
        var x = b
        l.withUnsafeMutableBufferPointer { l in
            // In place: the lower triangle becomes L with S = L L'.
            for j in 0..<n {
                var diagonal = l[j * n + j]
                for k in 0..<j { diagonal -= l[j * n + k] * l[j * n + k] }
                let root = diagonal > 0 ? diagonal.squareRoot() : 1e-12
                l[j * n + j] = root
                for i in (j + 1)..<max(j + 1, n) {
                    var v = l[i * n + j]
                    for k in 0..<j { v -= l[i * n + k] * l[j * n + k] }
                    l[i * n + j] = v / root
                }
            }
            let columns = x.count / n
            x.withUnsafeMutableBufferPointer { x in
                // Forward (L y = b) then backward (L' x = y), all columns at once row by row.
                for i in 0..<n {
                    for k in 0..<i {
                        let f = l[i * n + k]
                        if f != 0 { for c in 0..<columns { x[i * columns + c] -= f * x[k * columns + c] } }
                    }
                    let inv = 1 / l[i * n + i]
                    for c in 0..<columns { x[i * columns + c] *= inv }
                }
                for i in stride(from: n - 1, through: 0, by: -1) {
                    for k in (i + 1)..<max(i + 1, n) {
                        let f = l[k * n + i]
                        if f != 0 { for c in 0..<columns { x[i * columns + c] -= f * x[k * columns + c] } }
                    }
                    let inv = 1 / l[i * n + i]
                    for c in 0..<columns { x[i * columns + c] *= inv }
                }
            }
        }
        return x
    }
}
