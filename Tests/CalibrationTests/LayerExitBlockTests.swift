import Foundation
import XCTest

@testable import Calibration
@testable import CollabCore
@testable import Edge
import ExitTraining
@testable import Exits
@testable import LLM

/// Issue 6, block (b): a copy of one of the model's layers as an exit block with its own KV cache,
/// trained over whole sequences by `collm calibrate --block layer` and run by the edge.
final class LayerExitBlockTests: XCTestCase {
    /// Every recorded row names its sequence and position, and the sequences hold the tokens that
    /// were fed back: the token after a row's position is one the full model ranked in its top-k there.
    func testDatasetRowsPointIntoTheirSequences() throws {
        let (_, _, data) = try CalibrationModelTests.loadData()
        XCTAssertEqual(data.sequence.count, data.count)
        var followed = 0
        for row in 0..<data.count {
            let tokens = data.sequences[Int(data.sequence[row])], p = Int(data.position[row])
            XCTAssertLessThan(p, tokens.count)
            guard p + 1 < tokens.count else { continue }
            let k = data.teacherK
            XCTAssertTrue(data.teacherIds[row * k..<(row + 1) * k].contains(tokens[p + 1]), "row \(row)")
            followed += 1
        }
        XCTAssertGreaterThan(followed, data.count / 2)
    }

    nonisolated(unsafe) private static var trained: (ExitCalibration, Calibrator.Parts)?

    /// A layer block at exit 15 trained on a few prompts (shared by the tests that need a trained one),
    /// with the dataset parts it was fitted, selected and tested on.
    static func trainedLayerBlock() throws -> (ExitCalibration, Calibrator.Parts) {
        if let trained { return trained }
        let (model, _, data) = try CalibrationModelTests.loadData()
        var options = Calibrator.Options(split: 15, exits: [15])
        options.block = "layer"
        options.minimumExits = 3
        options.layerTraining.maxEpochs = 6
        let calibrator = Calibrator(model: model, options: options)
        trained = (try calibrator.run(data, fingerprint: model.file.fingerprint()), calibrator.parts(of: data))
        return trained!
    }

    /// A layer block trained on a few prompts beats the ridge adapter's held-out top-1 agreement,
    /// and survives the calibration file.
    func testTrainedLayerBlockBeatsTheRidgeAdapterOnHeldOutPrompts() throws {
        let (calibration, _) = try Self.trainedLayerBlock()
        let exit = try XCTUnwrap(calibration.exits.first)
        let ridge = try XCTUnwrap(exit.ridge)
        print("layer block at 15: held-out top-1 ridge \(ridge.agreement) -> layer \(exit.adapter.agreement); training \(exit.training)")
        guard case .layer = exit.block else { return XCTFail("a layer block was asked for, got \(exit.block.name)") }
        XCTAssertGreaterThan(exit.adapter.agreement, ridge.agreement)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("layer-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try calibration.write(to: path)
        XCTAssertEqual(try ExitCalibration(path: path).exits.first?.block, exit.block)
    }

    /// The edge feeds a layer block every position that reaches its layer, also those whose tokens
    /// exited lower down and were completed later: its output equals the block run over the whole
    /// sequence of that layer's states.
    func testEdgeFeedsTheLayerBlockEveryPosition() async throws {
        let (model, tokenizer, _) = try CalibrationModelTests.loadData()
        let edge = try LlamaModel(file: model.file, layers: 0..<15, head: true, pool: model.pool)
        let block = try TransformerExitBlock(copying: 29, of: model.file)
        // f32 weights in the engine's layer code: the same function as the training pass.
        let layerExit = try ExitLayer(block: block, beside: edge, at: 10, execution: .packed(.f32), capacity: 256)
        var options = EdgeOptions(mode: .edge, exits: [ExitHead(layer: 5, threshold: 0.4),
                                                             ExitHead(layer: 10, threshold: 0.9, adapter: layerExit)])
        options.maxTokens = 24
        let runner = try EdgeRunner(model: edge, tokenizer: tokenizer, fingerprint: [], options: options, connector: nil)
        let prompt = tokenizer.encode(ChatTemplate.chatML.render([ChatMessage(role: "user", content: "Tell me about the sea.")]))
        let r = try await runner.generate(prompt: prompt)
        XCTAssertTrue(r.result.sources.contains(.edge(layer: 5)), "the exit below must fire, so rows reach layer 10 late: \(r.result.sources)")
        let observed = layerExit.observed
        XCTAssertGreaterThan(observed, prompt.count)
        let z = try layerExit.applyLast()

        var h = try edge.embed(Array((prompt + r.result.tokens).prefix(observed)))
        try edge.forward(&h, cache: edge.makeCache(capacity: observed), only: 0..<10)
        let reference = TransformerExitRunner(block: block, pool: model.pool, capacity: observed)
        let expected = try reference.apply(h).rows(observed - 1..<observed)
        let err = zip(z.values, expected.values).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(err, 1e-3 * (expected.values.map(abs).max()! + 1))
    }

    /// Rewinding (spec mode drops rejected drafts) replaces the block's later positions, in the packed
    /// block and in the training pass alike.
    func testObservingAnEarlierPositionRewinds() throws {
        let (model, tokenizer, _) = try CalibrationModelTests.loadData()
        let edge = try LlamaModel(file: model.file, layers: 0..<8, pool: model.pool)
        for block in [try StackedTransformerExitBlock(copying: [20], of: model.file),
                      try StackedTransformerExitBlock(copying: [20, 29], of: model.file)] {
            try checkRewinds(block, model: model, tokenizer: tokenizer, edge: edge)
        }
    }

    private func checkRewinds(_ block: StackedTransformerExitBlock, model: LlamaModel, tokenizer: Tokenizer, edge: LlamaModel) throws {
        func states(_ text: String) throws -> HiddenStates {
            var h = try edge.embed(tokenizer.encode(text))
            try edge.forward(&h, cache: edge.makeCache(capacity: 64))
            return h
        }
        let rows = try states("The sea was calm that morning, and the boats")
        let other = try states("A quiet harbour").rows(0..<2)
        for execution in [ExitLayer.defaultExecution, .trainingPass] {
            let layer = try ExitLayer(block: block, beside: model, at: 8, execution: execution, capacity: 16)
            try layer.observe(rows.rows(0..<4), at: 0)
            _ = try layer.applyLast()
            try layer.observe(rows.rows(4..<6), at: 4)
            try layer.observe(other, at: 3)          // positions 3, 4 replaced
            let z = try layer.applyLast()
            var sequence = rows.rows(0..<3)
            sequence.append(other)
            let whole = try ExitLayer(block: block, beside: model, at: 8, execution: execution, capacity: 16)
                .apply(sequence, pool: model.pool)
            // Rows batched differently may round differently, no more.
            let scale = whole.values.map(abs).max()!
            func close(_ a: HiddenStates, _ b: HiddenStates) -> Bool {
                zip(a.values, b.values).allSatisfy { abs($0 - $1) <= 1e-5 * scale }
            }
            XCTAssertTrue(close(z, whole.rows(4..<5)), "\(execution), \(block.depth) layers")
            XCTAssertThrowsError(try layer.observe(other, at: 9), "a gap is refused")
            layer.truncate(to: 2)                    // drop positions 2...
            XCTAssertEqual(layer.observed, 2)
            try layer.observe(sequence.rows(2..<5), at: 2)
            XCTAssertTrue(close(try layer.applyLast(), whole.rows(4..<5)), "\(execution)")
            XCTAssertThrowsError(try ExitLayer(block: block, beside: model, at: 8, execution: execution).applyLast(),
                                 "nothing observed")
        }
    }

    /// A two-layer block: the engine's layer code (f32 weights) equals the training pass's layers run in
    /// turn, and the calibration file keeps both layers (and refuses a depth its tensors do not hold).
    func testTwoLayerBlockRunsItsLayersInTurnAndSurvivesTheFile() throws {
        let (model, tokenizer, _) = try CalibrationModelTests.loadData()
        let edge = try LlamaModel(file: model.file, layers: 0..<20, pool: model.pool)
        var h = try edge.embed(tokenizer.encode("The sea was calm that morning, and the boats went out early."))
        try edge.forward(&h, cache: edge.makeCache(capacity: 64))
        let block = try StackedTransformerExitBlock(copying: [28, 29], of: model.file)
        XCTAssertEqual(block.depth, 2)
        XCTAssertEqual(block.multiplyAddsPerToken, 2 * block.shape.multiplyAddsPerToken)
        var expected = h
        for layer in block.layers {
            expected = try TransformerExitRunner(block: layer, pool: model.pool, capacity: 64).apply(expected)
        }
        let one = try TransformerExitRunner(block: block.layer(0), pool: model.pool, capacity: 64).apply(h)
        let scale = expected.values.map(abs).max()!
        XCTAssertGreaterThan(zip(one.values, expected.values).map { abs($0 - $1) }.max()!, 1e-2 * scale, "the second layer must matter")
        let packed = try ExitLayer(block: block, beside: edge, at: 19, execution: .packed(.f32), capacity: 64).apply(h, pool: model.pool)
        XCTAssertLessThan(zip(packed.values, expected.values).map { abs($0 - $1) }.max()!, 1e-3 * (scale + 1))

        let evaluation = ExitCalibration.Evaluation(agreement: 0.5, exitRateAtPrecision: ["0.9": 0.2], curve: [])
        let calibration = ExitCalibration(fingerprint: "00", split: 20, targetPrecision: 0.9,
                                          exits: [.init(layer: 20, block: .layer(block), threshold: 0.8, testExitRate: 0.2,
                                                        testPrecision: 0.9, adapter: evaluation, logitLens: evaluation)],
                                          shortlist: [], notes: [:])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("layer2-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try calibration.write(to: path)
        XCTAssertEqual(try ExitCalibration(path: path).exits.first?.block, .layer(block))
        // The same tensors read as one layer are the wrong size: refused, not truncated.
        var file = try SafetensorsFile(path: path)
        let json = try XCTUnwrap(file.metadata[ExitCalibration.metadataKey])
        XCTAssertTrue(json.contains("\"layer_depth\":2"), json)
        file.metadata[ExitCalibration.metadataKey] = json.replacingOccurrences(of: "\"layer_depth\":2", with: "\"layer_depth\":1")
        try file.write(to: path)
        XCTAssertThrowsError(try ExitCalibration(path: path)) { error in
            XCTAssertTrue("\(error)".contains("misshapen"), "\(error)")
        }
    }
}
