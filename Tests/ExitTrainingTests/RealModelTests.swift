import Foundation
import LLM
import XCTest
import TestSupport

@testable import ExitTraining
@testable import Exits

/// Exit blocks on the default model: real hidden states after layer 15, the full model as teacher.
final class RealModelTests: XCTestCase {
    nonisolated(unsafe) static var windows: [Int: DistillationSet] = [:]

    /// Hidden states after 15 layers and the full model's top-32, for windows of 256 tokens of
    /// Botchan (each window its own sequence, as calibration prompts are). Cached across tests.
    func collect(windows: Range<Int>) throws -> DistillationSet {
        let (tokenizer, model, _) = try HeadFixture.load()
        var set = DistillationSet(width: model.config.hiddenSize, topK: 32)
        for w in windows {
            if Self.windows[w] == nil {
                let text = try String(contentsOfFile: try TestResources.dataFile("botchan-chapter1-100k.txt"), encoding: .utf8)
                let tokens = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
                Self.windows[w] = try DistillationSet.collect(model: model, tokens: Array(tokens[w * 256..<(w + 1) * 256]),
                                                              exitLayer: 15)
            }
            try set.append(Self.windows[w]!)
        }
        return set
    }

    func testTrainedBlockBeatsTheLogitLensOnHeldOutText() throws {
        let (_, _, head) = try HeadFixture.load()
        let train = try collect(windows: 0..<3), validation = try collect(windows: 3..<4), test = try collect(windows: 4..<5)
        let trainer = ExitBlockTrainer(head: head, pool: HeadFixture.pool)
        let lens = try ExitBlock(width: head.width, hiddenWidth: 256, seed: 1)
        let options = TrainingOptions(maxEpochs: 8, batchSize: 32)
        let result = try trainer.train(lens, on: train, validation: validation, options: options)
        let before = try trainer.evaluate(lens, on: test).summary
        let after = try trainer.evaluate(result.block, on: test).summary
        print(String(format: "layer 15, %d train / %d test tokens: top-1 agreement logit lens %.3f -> block %.3f, KL %.3f -> %.3f; %d steps, %.1f ms/step (batch 32), best epoch %d",
                     train.rows, test.rows, before.top1Agreement, after.top1Agreement, before.meanKL, after.meanKL,
                     result.report.steps, result.report.meanStepMilliseconds, result.report.bestEpoch))
        XCTAssertGreaterThan(after.top1Agreement, before.top1Agreement + 0.05)
        XCTAssertLessThan(after.meanKL, before.meanKL)
    }

    /// The block's output through the model's own (quantized) head agrees with the f32 head used in training.
    func testBlockOutputFeedsTheModelsHead() throws {
        let (_, model, head) = try HeadFixture.load()
        let set = try collect(windows: 0..<1).subset(Array(0..<8))
        var block = try ExitBlock(width: head.width, hiddenWidth: 64, seed: 3)
        var r = TestRandom(4)
        for i in block.shape.down { block.parameters[i] = 0.05 * r.uniform() }
        let z = block.apply(set.hidden, pool: model.pool)
        let logits = try model.logits(HiddenStates(values: z, width: head.width))
        let evaluation = try ExitBlockTrainer(head: head, pool: model.pool).evaluate(block, on: set)
        for row in 0..<set.rows {
            let rowLogits = logits[row * head.vocabularySize..<(row + 1) * head.vocabularySize]
            let top = rowLogits.indices.max { rowLogits[$0] < rowLogits[$1] }! - row * head.vocabularySize
            XCTAssertEqual(Int32(top), evaluation.predictions[row], "row \(row)")
        }
    }

    /// Block (b): the model's last layer, copied and fine-tuned as the exit block after layer 15.
    func testTransformerBlockBeatsTheLogitLensOnHeldOutText() throws {
        let (_, model, head) = try HeadFixture.load()
        let train = try collect(windows: 0..<3), validation = try collect(windows: 3..<4), test = try collect(windows: 4..<5)
        let trainer = ExitBlockTrainer(head: head, pool: HeadFixture.pool)
        let lens = try trainer.evaluate(try ExitBlock(width: head.width, hiddenWidth: 8), on: test).summary
        let copy = try TransformerExitBlock(copying: model.config.layerCount - 1, of: model.file)
        let options = TrainingOptions(maxEpochs: 6, batchSize: 256)
        let result = try trainer.train(copy, on: train, validation: validation, options: options)
        let untrained = try trainer.evaluate(copy, on: test).summary
        let after = try trainer.evaluate(result.block, on: test).summary
        print(String(format: "layer 15, transformer block from layer %d: top-1 agreement logit lens %.3f, copied layer %.3f -> trained %.3f, KL %.3f -> %.3f; %d steps, %.0f ms/step (256 rows), best epoch %d",
                     model.config.layerCount - 1, lens.top1Agreement, untrained.top1Agreement, after.top1Agreement,
                     untrained.meanKL, after.meanKL, result.report.steps, result.report.meanStepMilliseconds,
                     result.report.bestEpoch))
        XCTAssertGreaterThan(after.top1Agreement, lens.top1Agreement + 0.05)
        XCTAssertLessThan(after.meanKL, untrained.meanKL)
    }

    /// One model run serves several exits: the same rows as collecting each exit alone.
    func testCollectingSeveralExitsAtOnce() throws {
        let (tokenizer, model, _) = try HeadFixture.load()
        let tokens = tokenizer.encode("It was a bright cold day in April, and the clocks were striking thirteen.", addSpecial: false)
        let both = try DistillationSet.collect(model: model, tokens: tokens, exitLayers: [20, 8], chunk: 5)
        let alone = try DistillationSet.collect(model: model, tokens: tokens, exitLayer: 8)
        XCTAssertEqual(both[1], alone)
        XCTAssertEqual(both[0].teacherIds, alone.teacherIds)
        XCTAssertNotEqual(both[0].hidden, alone.hidden)
        XCTAssertEqual(try both[0].sequences(), [0..<tokens.count])
    }
}
