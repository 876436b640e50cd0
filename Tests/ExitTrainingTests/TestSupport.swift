import CKernels
import Foundation
import LLM
import XCTest

@testable import ExitTraining

/// Deterministic test data.
struct TestRandom {
    var rng: Xoshiro256StarStar
    init(_ seed: UInt64) { rng = Xoshiro256StarStar(seed: seed) }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(rng.nextUnitDouble() * 2 - 1) }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in uniform() * scale } }
}

/// Runs `body` with the kernels' instruction-set path forced to `isa`, then restores the best one.
func withISA<T>(_ isa: ck_isa, _ body: () throws -> T) rethrows -> T {
    ck_isa_set(isa)
    defer { ck_isa_set(ck_isa_best()) }
    return try body()
}

/// The paths to test on this CPU: scalar always, AVX-512 when present.
var testedISAs: [ck_isa] {
    ck_isa_best() == CK_ISA_AVX512VNNI ? [CK_ISA_SCALAR, CK_ISA_AVX512VNNI] : [CK_ISA_SCALAR]
}

/// max |a - b| / max(max |b|, tiny)
func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var num = 0.0, den = 1e-30
    for (x, y) in zip(a, b) {
        num = max(num, Double(abs(x - y)))
        den = max(den, Double(abs(y)))
    }
    return num / den
}

/// A random problem: head, data with a random top-k teacher per row (distinct ids, mass < 1).
func randomProblem(width d: Int, vocab: Int, rows: Int, topK k: Int, seed: UInt64) throws -> (FrozenHead, DistillationSet) {
    var r = TestRandom(seed)
    let head = try FrozenHead(norm: r.array(d).map { 1 + 0.3 * $0 }, epsilon: 1e-5, matrix: r.array(vocab * d),
                              vocabularySize: vocab)
    var ids = [Int32]()
    var probs = [Float]()
    var top1 = [Int32]()
    for _ in 0..<rows {
        let order = ExitBlockTrainer.permutation(vocab, &r.rng).prefix(k).map { Int32($0) }
        var p = (0..<k).map { _ in r.uniform() + 1.2 }.sorted(by: >)
        let mass = 0.6 + 0.3 * (r.uniform() + 1) / 2
        let total = p.reduce(0, +)
        p = p.map { $0 / total * mass }
        ids += order
        probs += p
        top1.append(order[0])
    }
    let set = try DistillationSet(width: d, topK: k, hidden: r.array(rows * d, scale: 2), teacherIds: ids,
                                  teacherProbs: probs, teacherTop1: top1)
    return (head, set)
}
