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
    /// Every path (the reference with libm's expf, the SIMD ones with a vector exp of ~1.5 ulp): the
    /// f64 formula within 2e-6 relative, the tails of the vector loops (counts not multiples of 16) included.
    func testGeluMulMatchesTheTanhFormula() {
        var rng = Rng(11)
        var x = (0..<1000).map { _ in rng.uniform() * 6 }
        x += [0, -0, 1e-8, -1e-8, 9.5, -9.5, 20, -20, 100, -100, 1e4, -1e4, 44, -44, 88, -88, 3e19, -3e19]
        let u = x.map { _ in rng.uniform() * 2 }
        for isa in availableIsas {
            for count in [x.count, x.count - 5, 13, 1] {
                var g = Array(x[0..<count])
                withIsa(isa) { ck_gelu_mul(&g, u, Int64(count)) }
                for i in 0..<count { checkGelu(g[i], x: x[i], u: u[i], isa: isa) }
            }
            var g = x
            withIsa(isa) { ck_gelu_mul(&g, u, Int64(g.count)) }
            for i in x.indices { checkGelu(g[i], x: x[i], u: u[i], isa: isa) }
        }
    }

    private func checkGelu(_ got: Float, x: Float, u: Float, isa: ck_isa) {
        let v = Double(x)
        let expected = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) * Double(u)
        XCTAssertTrue(got.isFinite, "x = \(x), isa \(isa.rawValue)")
        XCTAssertEqual(Double(got), expected, accuracy: 2e-6 * max(1, abs(expected)), "x = \(x), isa \(isa.rawValue)")
    }

    func testGeluMulReferenceMatchesTheTanhFormula() {
        var rng = Rng(11)
        var x = (0..<1000).map { _ in rng.uniform() * 6 }
        x += [0, -0, 1e-8, -1e-8, 9.5, -9.5, 20, -20, 100, -100, 1e4, -1e4]
        let u = x.map { _ in rng.uniform() * 2 }
        var g = x
        ck_gelu_mul_ref(&g, u, Int64(g.count))
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
            var scratch = [Float](repeating: 0, count: Int(ck_attention_scratch_floats(Int64(n), Int64(pos0), Int64(dim))))
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

    /// The fast RMSNorm sums each row's squares in the reference's order with the same FMAs, several
    /// rows at a time: results are identical, for any row count (8- and 4-row groups and single rows)
    /// and in place. (The default model's greedy answers depend on such bits: see README.)
    func testRMSNormFastPathEqualsReference() {
        var rng = Rng(21)
        for dim in [576, 640, 256, 64, 7] {
            for n in [1, 3, 4, 5, 8, 13, 21] {
                let x = (0..<n * dim).map { _ in rng.activation() * 3 }
                let w = (0..<dim).map { _ in 1 + rng.uniform() }
                var expected = [Float](repeating: 0, count: n * dim)
                ck_rmsnorm_ref(x, w, &expected, Int64(n), Int64(dim), 1e-5)
                for isa in availableIsas {
                    var y = [Float](repeating: 0, count: n * dim)
                    withIsa(isa) { ck_rmsnorm(x, w, &y, Int64(n), Int64(dim), 1e-5) }
                    XCTAssertEqual(y, expected, "dim \(dim) n \(n) isa \(isa.rawValue)")
                    var inPlace = x
                    withIsa(isa) { ck_rmsnorm(inPlace, w, &inPlace, Int64(n), Int64(dim), 1e-5) }
                    XCTAssertEqual(inPlace, expected, "in place, dim \(dim) n \(n) isa \(isa.rawValue)")
                }
            }
        }
    }

    /// RoPE from a table made once per call rotates exactly as ck_rope (same angles, same rounding),
    /// in both pair layouts.
    func testRopeTableEqualsRope() {
        var rng = Rng(22)
        for (heads, dim) in [(9, 64), (4, 256), (1, 256), (3, 8)] {
            for neox: Int32 in [0, 1] {
                for (n, pos0) in [(1, 0), (1, 300), (7, 5), (40, 1000)] {
                    let stride = heads * dim + 3
                    let x = (0..<n * stride).map { _ in rng.activation() }
                    var expected = x
                    ck_rope(&expected, Int64(n), Int64(heads), Int64(dim), Int64(stride), Int64(pos0), 10_000, neox)
                    var table = [Float](repeating: 0, count: n * dim)
                    ck_rope_table(&table, Int64(n), Int64(pos0), Int64(dim), 10_000)
                    var y = x
                    ck_rope_apply(&y, Int64(n), Int64(heads), Int64(dim), Int64(stride), table, neox)
                    XCTAssertEqual(y, expected, "heads \(heads) dim \(dim) neox \(neox) n \(n) pos0 \(pos0)")
                }
            }
        }
    }

    /// The SIMD attention paths serve several queries per pass over the cache but compute each score,
    /// softmax and weighted sum with the reference's operations in its order: the outputs are equal
    /// to the reference's, for grouped heads, partial head ranges, windows and decode/prefill shapes.
    func testAttentionFastPathsEqualReference() {
        var rng = Rng(23)
        let shapes: [(heads: Int, kvHeads: Int, dim: Int)] = [(4, 1, 256), (9, 3, 64), (4, 2, 32), (8, 1, 16), (2, 2, 24)]
        for shape in shapes {
            for (n, pos0) in [(1, 0), (1, 37), (3, 0), (17, 5), (40, 30)] {
                for window in [0, 1, 7, 512] {
                    let span = pos0 + n
                    let qStride = shape.heads * shape.dim + 8
                    let kvStride = shape.kvHeads * shape.dim
                    let q = (0..<n * qStride).map { _ in rng.activation() }
                    let k = (0..<span * kvStride).map { _ in rng.activation() }
                    let v = (0..<span * kvStride).map { _ in rng.activation() }
                    let scale = 1 / Float(shape.dim).squareRoot()
                    let ranges = [0..<shape.heads, 0..<(shape.heads / 2), (shape.heads / 2)..<shape.heads, 1..<shape.heads]
                    for heads in ranges where !heads.isEmpty {
                        let outStride = shape.heads * shape.dim
                        var expected = [Float](repeating: 7, count: n * outStride)
                        var scratch = [Float](repeating: 0, count: Int(ck_attention_scratch_floats(Int64(n), Int64(pos0), Int64(shape.dim))))
                        ck_attention_ref(q, Int64(qStride), Int64(n), Int64(pos0), k, v, Int64(kvStride),
                                         Int64(shape.heads), Int64(shape.kvHeads), Int64(shape.dim), scale, Int64(window),
                                         &expected, Int64(outStride), Int64(heads.lowerBound), Int64(heads.upperBound), &scratch)
                        for isa in availableIsas {
                            var out = [Float](repeating: 7, count: n * outStride)
                            for i in scratch.indices { scratch[i] = .nan }
                            withIsa(isa) {
                                ck_attention(q, Int64(qStride), Int64(n), Int64(pos0), k, v, Int64(kvStride),
                                             Int64(shape.heads), Int64(shape.kvHeads), Int64(shape.dim), scale, Int64(window),
                                             &out, Int64(outStride), Int64(heads.lowerBound), Int64(heads.upperBound), &scratch)
                            }
                            XCTAssertEqual(out, expected, "shape \(shape) n \(n) pos0 \(pos0) window \(window) heads \(heads) isa \(isa.rawValue)")
                        }
                    }
                }
            }
        }
    }
}
