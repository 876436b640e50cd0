import CKernels
import XCTest

@testable import Calibration
@testable import LLM

final class RidgeRegressionTests: XCTestCase {
    private func random(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    /// The blocked C kernel equals a plain f64 triple loop, for sizes that exercise every remainder.
    func testGramKernelMatchesScalarReference() {
        var rng = SplitMix64(seed: 1)
        let (n, da, db) = (131, 13, 19)
        let a = random(n * da, &rng), b = random(n * db, &rng)
        var c = [Double](repeating: 0.5, count: da * db)
        // Two calls over split row ranges must equal one call over all.
        c.withUnsafeMutableBufferPointer { cp in
            ck_gram_accumulate(a, Int64(da), Int64(da), b, Int64(db), Int64(db), Int64(n), cp.baseAddress!, 0, 6)
            ck_gram_accumulate(a, Int64(da), Int64(da), b, Int64(db), Int64(db), Int64(n), cp.baseAddress!, 6, Int64(da))
        }
        for i in 0..<da {
            for j in 0..<db {
                var s = 0.5
                for r in 0..<n { s += Double(a[r * da + i]) * Double(b[r * db + j]) }
                XCTAssertEqual(c[i * db + j], s, accuracy: 1e-9 * max(1, abs(s)))
            }
        }
    }

    func testCholeskySolvesSymmetricPositiveDefiniteSystems() {
        var rng = SplitMix64(seed: 2)
        let n = 9, columns = 4
        let m = random(n * n, &rng).map(Double.init)
        var s = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { s[i * n + j] += m[i * n + k] * m[j * n + k] } } }
        for i in 0..<n { s[i * n + i] += 0.1 }
        let b = random(n * columns, &rng).map(Double.init)
        let x = CholeskySolver.solve(s, b, size: n)
        for i in 0..<n {
            for c in 0..<columns {
                var v = 0.0
                for k in 0..<n { v += s[i * n + k] * x[k * columns + c] }
                XCTAssertEqual(v, b[i * columns + c], accuracy: 1e-8)
            }
        }
    }

    /// Targets made by a known affine map (plus a little noise) give back that map.
    func testRidgeRecoversAKnownAffineMap() {
        var rng = SplitMix64(seed: 3)
        let (n, d) = (400, 12)
        let a = random(d * d, &rng), bias = random(d, &rng, scale: 3)
        let x = random(n * d, &rng, scale: 5)
        var t = [Float](repeating: 0, count: n * d)
        for r in 0..<n {
            for i in 0..<d {
                var v = bias[i]
                for j in 0..<d { v += a[i * d + j] * x[r * d + j] }
                t[r * d + i] = v + random(1, &rng, scale: 0.01)[0]
            }
        }
        let fit = RidgeRegression.fit(inputs: x, targets: t, width: d, strength: 1e-6, pool: ThreadPool(threadCount: 2))
        for k in 0..<(d * d) { XCTAssertEqual(fit.matrix[k], a[k], accuracy: 2e-3) }
        for i in 0..<d { XCTAssertEqual(fit.bias[i], bias[i], accuracy: 2e-2) }
    }
}
