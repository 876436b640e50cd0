import CKernels
import LLM
import XCTest

@testable import ExitTraining
@testable import Exits

/// Every parameter's analytic gradient against central finite differences of the loss, on small
/// random dimensions, for both loss tails, with and without cross-entropy, on every kernel path.
final class GradientCheckTests: XCTestCase {
    static let pool = ThreadPool(threadCount: 2)
    /// Per tensor: ||analytic - numeric|| / ||numeric|| must stay below this (measured: ~1e-4).
    static let tolerance = 5e-3

    /// A block with every parameter random (W2 != 0, so W1 and g get gradient too).
    func randomBlock(width d: Int, hidden h: Int, adapter: Bool, seed: UInt64) throws -> ExitBlock {
        var r = TestRandom(seed)
        var block = try ExitBlock(width: d, hiddenWidth: h, epsilon: 1e-5,
                                  adapterMatrix: adapter ? (0..<d * d).map { $0 % (d + 1) == 0 ? 1 : 0 } : nil,
                                  adapterBias: adapter ? [Float](repeating: 0, count: d) : nil, seed: seed)
        let s = block.shape
        for i in s.norm { block.parameters[i] = 1 + 0.3 * r.uniform() }
        for i in s.up { block.parameters[i] = 0.6 * r.uniform() }
        for i in s.down { block.parameters[i] = 0.4 * r.uniform() }
        for i in s.adapterMatrix { block.parameters[i] += 0.2 * r.uniform() }
        for i in s.adapterBias { block.parameters[i] = 0.2 * r.uniform() }
        return block
    }

    /// Relative error per tensor between `gradient` and central differences with step `eps`.
    func tensorErrors(_ block: ExitBlock, _ gradient: [Float], trainer: ExitBlockTrainer, set: DistillationSet,
                      loss: LossOptions, eps: Float = 1e-2) throws -> [String: Double] {
        let s = block.shape
        var numeric = [Double](repeating: 0, count: s.parameterCount)
        for i in 0..<s.parameterCount {
            var plus = block, minus = block
            plus.parameters[i] += eps
            minus.parameters[i] -= eps
            let lp = try trainer.lossAndGradient(plus, on: set, loss: loss).loss
            let lm = try trainer.lossAndGradient(minus, on: set, loss: loss).loss
            numeric[i] = (lp - lm) / Double(2 * eps)
        }
        var errors: [String: Double] = [:]
        let tensors = ["norm": s.norm, "up": s.up, "down": s.down, "adapterMatrix": s.adapterMatrix, "adapterBias": s.adapterBias]
        for (name, range) in tensors where !range.isEmpty {
            var num = 0.0, den = 0.0
            for i in range {
                num += (Double(gradient[i]) - numeric[i]) * (Double(gradient[i]) - numeric[i])
                den += numeric[i] * numeric[i]
            }
            errors[name] = (num / max(den, 1e-20)).squareRoot()
        }
        return errors
    }

    func testEveryParameterMatchesFiniteDifferences() throws {
        let (head, set) = try randomProblem(width: 8, vocab: 23, rows: 4, topK: 5, seed: 11)
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let block = try randomBlock(width: 8, hidden: 6, adapter: true, seed: 12)
        var worst = 0.0
        for isa in testedISAs {
            for loss in [LossOptions(), LossOptions(tail: .renormalise), LossOptions(klWeight: 0.7, crossEntropyWeight: 0.5)] {
                try withISA(isa) {
                    let gradient = try trainer.lossAndGradient(block, on: set, loss: loss).gradient
                    let errors = try tensorErrors(block, gradient, trainer: trainer, set: set, loss: loss)
                    XCTAssertEqual(errors.count, 5)
                    for (name, err) in errors {
                        XCTAssertLessThan(err, Self.tolerance, "\(name) isa \(isa) loss \(loss)")
                        worst = max(worst, err)
                    }
                }
            }
        }
        print("gradient check: worst relative error per tensor \(worst)")
    }

    func testBlockWithoutAdapterMatchesFiniteDifferences() throws {
        let (head, set) = try randomProblem(width: 6, vocab: 17, rows: 3, topK: 4, seed: 21)
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let block = try randomBlock(width: 6, hidden: 9, adapter: false, seed: 22)
        let gradient = try trainer.lossAndGradient(block, on: set).gradient
        let errors = try tensorErrors(block, gradient, trainer: trainer, set: set, loss: LossOptions())
        XCTAssertEqual(Set(errors.keys), ["norm", "up", "down"])
        for (name, err) in errors { XCTAssertLessThan(err, Self.tolerance, name) }
    }

    /// The check has teeth: a gradient 3% off in one tensor fails it.
    func testCheckRejectsASlightlyWrongGradient() throws {
        let (head, set) = try randomProblem(width: 8, vocab: 23, rows: 4, topK: 5, seed: 11)
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let block = try randomBlock(width: 8, hidden: 6, adapter: true, seed: 12)
        var gradient = try trainer.lossAndGradient(block, on: set).gradient
        for i in block.shape.up { gradient[i] *= 1.03 }
        let errors = try tensorErrors(block, gradient, trainer: trainer, set: set, loss: LossOptions())
        XCTAssertGreaterThan(errors["up"]!, Self.tolerance)
        XCTAssertLessThan(errors["down"]!, Self.tolerance)
    }
}
