import CKernels
import Foundation
import LLM
import XCTest

@testable import ExitTraining
@testable import Exits

/// Measured costs on the default model (printed; asserted only loosely, the machine is shared).
final class TimingTests: XCTestCase {
    func milliseconds(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        let start = Date()
        for _ in 0..<repeats { try body() }
        return Date().timeIntervalSince(start) * 1000 / Double(repeats)
    }

    func testTrainingStepAndHeadProducts() throws {
        let (_, model, head) = try HeadFixture.load()
        let (d, vocab, batch) = (head.width, head.vocabularySize, 64)
        var r = TestRandom(1)
        let y = r.array(batch * d)
        var logits = [Float](repeating: 0, count: batch * vocab)
        var dy = [Float](repeating: 0, count: batch * d)
        let forward = milliseconds(5) {
            head.matrix.withUnsafeBufferPointer { e in
                parallelGemm(model.pool, transposeB: true, m: batch, n: vocab, k: d, a: y, lda: d, b: e.baseAddress!, ldb: d,
                             c: &logits, ldc: vocab)
            }
        }
        let backward = milliseconds(5) {
            head.matrix.withUnsafeBufferPointer { e in
                parallelGemm(model.pool, m: batch, n: d, k: vocab, a: logits, lda: vocab, b: e.baseAddress!, ldb: d,
                             c: &dy, ldc: d)
            }
        }
        let gflop = 2.0 * Double(batch * vocab * d) / 1e9
        // A full step: 10 batches of 64 rows with a width-512 block, real-shaped random data.
        let rows = 10 * batch
        let ids = (0..<rows * 32).map { Int32(($0 * 7919) % vocab) }
        let probs = [Float](repeating: 0.02, count: rows * 32)
        let set = try DistillationSet(width: d, topK: 32, hidden: r.array(rows * d, scale: 3), teacherIds: ids,
                                      teacherProbs: probs, teacherTop1: (0..<rows).map { ids[$0 * 32] })
        var options = TrainingOptions()
        options.maxEpochs = 1
        let trainer = ExitBlockTrainer(head: head, pool: model.pool)
        let result = try trainer.train(try ExitBlock(width: d, hiddenWidth: 512, seed: 1), on: set, options: options)
        print(String(format: "head %dx%d, batch %d: logits %.1f ms (%.0f GFLOP/s), transpose %.1f ms (%.0f GFLOP/s); training step (block width 512) %.1f ms",
                     vocab, d, batch, forward, gflop / forward * 1000, backward, gflop / backward * 1000,
                     result.report.meanStepMilliseconds))
        XCTAssertLessThan(result.report.meanStepMilliseconds, 2000)
    }

    /// Inference cost per token of the block (width 512) next to one transformer layer of the model.
    func testBlockCostPerTokenAgainstOneLayer() throws {
        let (_, model, head) = try HeadFixture.load()
        var r = TestRandom(2)
        let block = try ExitBlock(width: head.width, hiddenWidth: 512, seed: 1)
        let h = r.array(head.width)
        let runner = ExitBlockRunner(block: block, pool: model.pool)
        let blockMs = milliseconds(200) { _ = runner.apply(HiddenStates(values: h, width: head.width)) }
        let cache = model.makeCache(capacity: 512)
        // One token at a time through layer 15, at positions 0..<~400 (attention over a short context).
        let layerMs = try milliseconds(200) {
            var x = HiddenStates(values: h, width: head.width)
            try model.forward(&x, cache: cache, only: 15..<16)
        }
        let headMs = try milliseconds(50) { _ = try model.logits(HiddenStates(values: h, width: head.width)) }
        // Block (b), f32: one token at a time at positions 0..<~250.
        let transformer = TransformerExitRunner(block: try TransformerExitBlock(copying: 29, of: model.file),
                                                pool: model.pool, capacity: 512)
        let transformerMs = try milliseconds(200) { _ = try transformer.apply(HiddenStates(values: h, width: head.width)) }
        print(String(format: "per token: exit block (width 512) %.3f ms, one transformer layer %.3f ms (block = %.2f layers), transformer exit block (f32) %.3f ms (%.2f layers), model head %.3f ms",
                     blockMs, layerMs, blockMs / layerMs, transformerMs, transformerMs / layerMs, headMs))
    }
}
