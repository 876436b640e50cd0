import CKernels
import Foundation
import XCTest

/// The element-wise ops Gemma 3 adds (GELU-gated FFN, per-head RMSNorm in place, sliding-window
/// attention), each against a plain f64 formula.
final class OpsTests: XCTestCase {
    /// The validation of untrusted states counts NaN, infinities and values beyond the bound, in
    /// every position of the vectorised loop (and its tail).
    func testCountOutsideCountsNonFiniteAndOutOfRangeValues() {
        for n in [0, 1, 7, 8, 31, 33, 1000] {
            var x = (0..<n).map { Float($0 % 13) - 6 }  // within ±6
            XCTAssertEqual(ck_count_outside(x, Int64(n), 6), 0, "n \(n)")
            guard n > 0 else { continue }
            let bad: [Float] = [.nan, -.nan, .infinity, -.infinity, 6.0001, -1e30, .signalingNaN]
            var expected = 0
            for (k, value) in bad.enumerated() where k * 5 < n {
                x[(k * 5 + n / 2) % n] = value
                expected = x.filter { !(abs($0) <= 6) }.count
            }
            XCTAssertEqual(Int(ck_count_outside(x, Int64(n), 6)), expected, "n \(n)")
            XCTAssertEqual(Int(ck_count_outside(x, Int64(n), .greatestFiniteMagnitude)), x.filter { !$0.isFinite }.count, "n \(n)")
        }
    }

    /// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), times the up projection.
    func testGeluMulMatchesTheTanhFormula() {
        var rng = Rng(11)
        var x = (0..<1000).map { _ in rng.uniform() * 6 }
        x += [0, -0, 1e-8, -1e-8, 9.5, -9.5, 20, -20, 100, -100, 1e4, -1e4]
        let u = x.map { _ in rng.uniform() * 2 }
        var g = x
        ck_gelu_mul(&g, u, Int64(g.count))
        for i in x.indices {
            let v = Double(x[i])
            let expected = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) * Double(u[i])
            XCTAssertTrue(g[i].isFinite, "x = \(x[i])")
            XCTAssertEqual(Double(g[i]), expected, accuracy: 2e-6 * max(1, abs(expected)), "x = \(x[i])")
        }
    }

    /// Gemma normalizes each query/key head of a row in place: heads as rows of head_dim.
    func testRMSNormInPlacePerHead() {
        var rng = Rng(12)
        let heads = 4, dim = 256
        let x = (0..<heads * dim).map { _ in rng.activation() * 3 }
        let w = (0..<dim).map { _ in 1 + rng.uniform() }
        var y = x
        ck_rmsnorm(y, w, &y, Int64(heads), Int64(dim), 1e-6)
        for h in 0..<heads {
            let head = x[h * dim..<(h + 1) * dim].map(Double.init)
            let rms = (head.reduce(0) { $0 + $1 * $1 } / Double(dim) + 1e-6).squareRoot()
            for i in 0..<dim {
                XCTAssertEqual(Double(y[h * dim + i]), head[i] / rms * Double(w[i]), accuracy: 1e-5)
            }
        }
    }

    /// Softmax attention over positions (p - window, p] (all of [0, p] for window 0), with a given scale.
    private func reference(q: [Float], k: [Float], v: [Float], n: Int, pos0: Int, heads: Int, kvHeads: Int,
                           dim: Int, scale: Double, window: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * heads * dim)
        let group = heads / kvHeads
        for j in 0..<n {
            let pos = pos0 + j
            let lo = window > 0 ? max(0, pos - window + 1) : 0
            for h in 0..<heads {
                let g = h / group
                let scores = (lo...pos).map { p -> Double in
                    var s = 0.0
                    for i in 0..<dim { s += Double(q[(j * heads + h) * dim + i]) * Double(k[(p * kvHeads + g) * dim + i]) }
                    return s * scale
                }
                let m = scores.max()!
                let e = scores.map { exp($0 - m) }
                let sum = e.reduce(0, +)
                for (idx, p) in (lo...pos).enumerated() {
                    for i in 0..<dim { out[(j * heads + h) * dim + i] += e[idx] / sum * Double(v[(p * kvHeads + g) * dim + i]) }
                }
            }
        }
        return out
    }

    func testSlidingWindowAttention() {
        var rng = Rng(13)
        let heads = 4, kvHeads = 1, dim = 32, pos0 = 5, n = 7, span = pos0 + n
        let q = (0..<n * heads * dim).map { _ in rng.activation() }
        let k = (0..<span * kvHeads * dim).map { _ in rng.activation() }
        let v = (0..<span * kvHeads * dim).map { _ in rng.activation() }
        let scale = 1 / Float(dim).squareRoot() * 1.7
        var results: [Int: [Float]] = [:]
        for window in [0, 1, 3, 8, span, 100] {
            var out = [Float](repeating: 0, count: n * heads * dim)
            var scratch = [Float](repeating: 0, count: span)
            ck_attention(q, Int64(heads * dim), Int64(n), Int64(pos0), k, v, Int64(kvHeads * dim),
                         Int64(heads), Int64(kvHeads), Int64(dim), scale, Int64(window),
                         &out, Int64(heads * dim), 0, Int64(heads), &scratch)
            let expected = reference(q: q, k: k, v: v, n: n, pos0: pos0, heads: heads, kvHeads: kvHeads, dim: dim,
                                     scale: Double(scale), window: window)
            for i in out.indices { XCTAssertEqual(Double(out[i]), expected[i], accuracy: 1e-5, "window \(window)") }
            results[window] = out
        }
        // A window of one position returns that position's value; one as long as the context changes nothing.
        XCTAssertEqual(results[span], results[0])
        XCTAssertEqual(results[100], results[0])
        XCTAssertNotEqual(results[3], results[0])
        for j in 0..<n {
            for h in 0..<heads {
                for i in 0..<dim { XCTAssertEqual(results[1]![(j * heads + h) * dim + i], v[(pos0 + j) * dim + i], accuracy: 1e-6) }
            }
        }
    }
}
