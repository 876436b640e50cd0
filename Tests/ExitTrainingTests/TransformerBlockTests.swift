import CKernels
import LLM
import XCTest
import TestSupport

@testable import ExitTraining
@testable import Exits

/// Block (b): a transformer layer as exit block. Gradients against finite differences, the cached
/// runner against the training forward, and a copied layer against the engine's own layer.
final class TransformerBlockTests: XCTestCase {
    static let pool = ThreadPool(threadCount: 2)

    func smallShape(halves: Bool = false) -> TransformerExitShape {
        TransformerExitShape(width: 8, headCount: 2, kvHeadCount: 1, headDim: 4, feedForwardWidth: 6,
                             ropeBase: 100, ropeHalves: halves, epsilon: 1e-5)
    }

    func randomBlock(_ shape: TransformerExitShape, seed: UInt64) throws -> TransformerExitBlock {
        var r = TestRandom(seed)
        var p = r.array(shape.parameterCount, scale: 0.5)
        for i in shape.attentionNorm { p[i] = 1 + 0.3 * r.uniform() }
        for i in shape.ffnNorm { p[i] = 1 + 0.3 * r.uniform() }
        return try TransformerExitBlock(shape: shape, parameters: p)
    }

    /// Two sequences (3 and 4 rows) with random teachers.
    func smallSet() throws -> (FrozenHead, DistillationSet) {
        let (head, set) = try randomProblem(width: 8, vocab: 23, rows: 7, topK: 5, seed: 31)
        let withSequences = try DistillationSet(width: 8, topK: 5, hidden: set.hidden, teacherIds: set.teacherIds,
                                                teacherProbs: set.teacherProbs, teacherTop1: set.teacherTop1,
                                                positions: [0, 1, 2, 0, 1, 2, 3])
        return (head, withSequences)
    }

    func testEveryParameterMatchesFiniteDifferences() throws {
        let (head, set) = try smallSet()
        XCTAssertEqual(try set.sequences(), [0..<3, 3..<7])
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        var worst = 0.0
        for halves in [false, true] {
            let block = try randomBlock(smallShape(halves: halves), seed: 32)
            let s = block.shape
            let gradient = try trainer.lossAndGradient(block, on: set).gradient
            let eps: Float = 1e-2
            let tensors = ["attentionNorm": s.attentionNorm, "qkv": s.qkv, "output": s.output, "ffnNorm": s.ffnNorm,
                           "gateUp": s.gateUp, "down": s.down]
            for (name, range) in tensors {
                let err = try Self.finiteDifferenceError(gradient, over: range, at: block.parameters) { parameters in
                    try trainer.lossAndGradient(TransformerExitBlock(shape: s, parameters: parameters), on: set).loss
                }
                worst = max(worst, err)
                XCTAssertLessThan(err, GradientCheckTests.tolerance, "\(name) halves \(halves)")
            }
        }
        print("transformer block gradient check: worst relative error per tensor \(worst)")
    }

    /// Two layers in turn: every parameter of both (the lower one trained through the upper one's input
    /// gradient) against finite differences.
    func testStackedLayersMatchFiniteDifferences() throws {
        let (head, set) = try smallSet()
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let block = try StackedTransformerExitBlock(layers: [try randomBlock(smallShape(), seed: 34),
                                                             try randomBlock(smallShape(), seed: 35)])
        let gradient = try trainer.lossAndGradient(block, on: set).gradient
        let n = block.shape.parameterCount
        for layer in 0..<2 {
            let err = try Self.finiteDifferenceError(gradient, over: (layer * n)..<((layer + 1) * n), at: block.parameters) { parameters in
                try trainer.lossAndGradient(StackedTransformerExitBlock(shape: block.shape, depth: 2, parameters: parameters), on: set).loss
            }
            XCTAssertLessThan(err, GradientCheckTests.tolerance, "layer \(layer)")
        }
    }

    /// ||gradient - finite differences|| / ||finite differences|| over `range` of the parameters
    /// (central differences of `loss`); infinite when the loss does not depend on them at all.
    static func finiteDifferenceError(_ gradient: [Float], over range: Range<Int>, at parameters: [Float],
                              loss: ([Float]) throws -> Double) rethrows -> Double {
        let eps: Float = 1e-2
        var num = 0.0, den = 0.0
        for i in range {
            var plus = parameters, minus = parameters
            plus[i] += eps
            minus[i] -= eps
            let fd = (try loss(plus) - loss(minus)) / Double(2 * eps)
            num += (Double(gradient[i]) - fd) * (Double(gradient[i]) - fd)
            den += fd * fd
        }
        return den > 0 ? (num / den).squareRoot() : .infinity
    }

    func testRunnerWithCacheMatchesTheWholeSequenceForward() throws {
        let (_, set) = try smallSet()
        let block = try randomBlock(smallShape(), seed: 33)
        let pass = TransformerPass(shape: block.shape, rows: 7)
        let whole = block.parameters.withUnsafeBufferPointer { p in
            set.hidden.withUnsafeBufferPointer { h in
                pass.forward(parameters: p.baseAddress!, hidden: h.baseAddress!, segments: [0..<3, 3..<7], pool: Self.pool)
                return Array(UnsafeBufferPointer(start: pass.z, count: 7 * 8))
            }
        }
        let runner = TransformerExitRunner(block: block, pool: Self.pool, capacity: 8)
        var pieces: [Float] = []
        for (rows, reset) in [(0..<1, true), (1..<3, false), (3..<5, true), (5..<6, false), (6..<7, false)] {
            if reset { runner.reset() }
            pieces += try runner.apply(HiddenStates(values: Array(set.hidden[rows.lowerBound * 8..<rows.upperBound * 8]), width: 8)).values
        }
        XCTAssertLessThan(maxRelativeError(pieces, whole), 1e-5)
    }

    /// A copy of layer 15 applied to the states after 15 layers gives the engine's states after 16.
    /// A Gemma layer has norms and an activation the llama-layout exit block lacks: refused, not miscopied.
    func testGemmaLayerIsRefused() throws {
        let file = try GGUFFile(path: try TestResources.gemmaModelPath())
        XCTAssertThrowsError(try TransformerExitBlock(copying: 8, of: file)) {
            XCTAssertTrue("\($0)".contains("MLP exit blocks"), "\($0)")
        }
    }

    func testCopiedLayerMatchesTheEnginesLayer() throws {
        let (tokenizer, model, _) = try HeadFixture.load()
        let tokens = tokenizer.encode("The quick brown fox jumps over the lazy dog, and then it runs away into the forest.", addSpecial: false)
        let cache = model.makeCache(capacity: 64)
        var h = try model.embed(tokens)
        try model.forward(&h, cache: cache, only: 0..<15)
        let before = h
        try model.forward(&h, cache: cache, only: 15..<16)
        let block = try TransformerExitBlock(copying: 15, of: model.file)
        let runner = TransformerExitRunner(block: block, pool: model.pool, capacity: 64)
        let z = try runner.apply(before)
        // Differences: f32 weights here, int8-quantized activations in the engine's Q4_1 products.
        let delta = zip(z.values, before.values).map { $0 - $1 }
        let engineDelta = zip(h.values, before.values).map { $0 - $1 }
        let err = relativeError(delta, engineDelta)
        print("copied layer 15 vs engine: relative error of the layer's update \(err)")
        XCTAssertLessThan(err, 0.05)
    }
}

/// ||a - b|| / ||b||
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num += Double(x - y) * Double(x - y)
        den += Double(y) * Double(y)
    }
    return (num / max(den, 1e-30)).squareRoot()
}
