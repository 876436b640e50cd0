import Foundation
import XCTest

@testable import Calibration
@testable import Edge
@testable import Exits
@testable import LLM

/// A trained layer block runs packed into an engine format (Q8_0, or Q5_0 / Q4_0 when stored as q5 / q4) with the engine's layer code; the
/// f32 training pass is the reference. Packing must not change the exit's decisions.
final class PackedLayerBlockTests: XCTestCase {
    /// Exit logits on the held-out prompts' real states: no decision at the calibrated threshold changes,
    /// wherever the f32 block is confident the packed block's top-1 is the same token with nearly the same
    /// probability, and elsewhere top-1 differs only at rare near-ties.
    func testPackedBlockAgreesWithTheF32BlockOnHeldOutStates() throws {
        try checkPackedBlockAgreesWithTheF32Block(storedAs: .f32)
    }

    /// The same for a block stored as q5 and packed to Q5_0, which holds the stored values exactly.
    func testQ5BlockPackedToQ5_0AgreesWithItsF32Pass() throws {
        try checkPackedBlockAgreesWithTheF32Block(storedAs: .q5)
    }

    /// The same for a block stored as q4 and packed to Q4_0. The packed rows are the stored values, but the int8
    /// activations move its probabilities about twice as far as a q5 block's, and a few decisions right at the
    /// threshold flip (measured: 2 of 993, and no confident token changed).
    func testQ4BlockPackedToQ4_0AgreesWithItsF32Pass() throws {
        try checkPackedBlockAgreesWithTheF32Block(storedAs: .q4, changedDecisions: 3)
    }

    /// At most `changedDecisions` positions may change their decision at the threshold.
    private func checkPackedBlockAgreesWithTheF32Block(storedAs precision: WeightPrecision, changedDecisions: Int = 0) throws {
        let (model, _, data) = try CalibrationModelTests.loadData()
        let (calibration, parts) = try LayerExitBlockTests.trainedLayerBlock()
        let exit = try XCTUnwrap(calibration.exits.first)
        guard case let .layer(trained) = exit.block else { return XCTFail("no layer block") }
        let block = trained.rounded(to: precision)
        let packing = ExitLayer.Execution.packed(precision.packingFormat)
        let edge = try LlamaModel(file: model.file, layers: 0..<15, pool: model.pool)
        let threshold = exit.threshold <= 1 ? exit.threshold : 0.5
        var (positions, sameTop1, sameDecision, confident, confidentSame) = (0, 0, 0, 0, 0)
        var (maxDifference, maxConfidentDifference) = (Float(0), Float(0))
        for id in Set(parts.test.map { Int(data.sequence[$0]) }).sorted() {
            let tokens = data.sequences[id].map(Int.init)
            var h = try edge.embed(tokens)
            try edge.forward(&h, cache: edge.makeCache(capacity: tokens.count))
            let reference = try ExitLayer(block: block, beside: model, at: 15, execution: .trainingPass,
                                          capacity: tokens.count).apply(h, pool: model.pool)
            let packed = try ExitLayer(block: block, beside: model, at: 15, execution: packing, capacity: tokens.count).apply(h, pool: model.pool)
            let (a, b) = (try model.logits(reference), try model.logits(packed))
            let vocab = model.config.vocabularySize
            for r in 0..<tokens.count {
                let (ta, tb, pa, paPacked, pb) = topTokens(a, b, row: r, vocabulary: vocab)
                let difference = abs(pa - paPacked)
                positions += 1
                if ta == tb { sameTop1 += 1 }
                if (pa >= threshold) == (pb >= threshold) { sameDecision += 1 }
                maxDifference = max(maxDifference, difference)
                if pa >= threshold {
                    confident += 1
                    if ta == tb { confidentSame += 1 }
                    maxConfidentDifference = max(maxConfidentDifference, difference)
                }
            }
        }
        print("packed \(packing) vs f32 layer block (stored \(precision)) over \(positions) held-out positions: top-1 equal at \(sameTop1), "
              + "decisions at \(threshold) equal at \(sameDecision); \(confident) confident, top-1 equal at \(confidentSame); "
              + "largest change of the f32 top-1's probability \(maxDifference), at confident positions \(maxConfidentDifference)")
        XCTAssertGreaterThan(positions, 200)
        XCTAssertGreaterThan(confident, 10)
        XCTAssertGreaterThanOrEqual(sameDecision, positions - changedDecisions, "packing changed the exit's decisions")
        XCTAssertEqual(confidentSame, confident, "packing changed a confident exit's token")
        XCTAssertLessThan(maxConfidentDifference, 0.05)
        XCTAssertGreaterThan(Double(sameTop1) / Double(positions), 0.95)
    }

    /// The edge with a packed layer exit at 15 generates what it generates with the f32 block, token by
    /// token and decision by decision: which tokens the exit decided (`.edge(layer: 15)`) and which fell through
    /// to the split's logit lens (`.edge(layer: 20)`).
    func testEdgeDecisionsAreUnchangedByPacking() async throws {
        let (model, tokenizer, _) = try CalibrationModelTests.loadData()
        let (calibration, _) = try LayerExitBlockTests.trainedLayerBlock()
        guard case let .layer(block) = try XCTUnwrap(calibration.exits.first).block else { return XCTFail("no layer block") }
        let edge = try LlamaModel(file: model.file, layers: 0..<20, head: true, pool: model.pool)
        var fired = 0
        for text in ["What is the capital of France?", "Write a short poem about autumn.", "Explain what a noun is."] {
            let prompt = tokenizer.encode(ChatTemplate.chatML.render([ChatMessage(role: "user", content: text)]))
            var runs: [GenerationResult] = []
            for execution in [ExitLayer.Execution.trainingPass, ExitLayer.defaultExecution] {
                let exit = try ExitLayer(block: block, beside: edge, at: 15, execution: execution, capacity: 256)
                var options = EdgeOptions(mode: .edge, exits: [ExitHead(layer: 15, threshold: 0.5, adapter: exit)])
                options.maxTokens = 24
                let runner = try EdgeRunner(model: edge, tokenizer: tokenizer, fingerprint: [], options: options, connector: nil)
                runs.append(try await runner.generate(prompt: prompt).result)
            }
            XCTAssertEqual(runs[0].tokens, runs[1].tokens, text)
            XCTAssertEqual(runs[0].sources, runs[1].sources, text)
            fired += runs[1].sources.filter { $0 == .edge(layer: 15) }.count
        }
        XCTAssertGreaterThan(fired, 0, "the exit never fired: nothing was compared")
    }
}

/// Row `row` of two logit matrices: the top-1 of each (`ta`, `tb`), `ta`'s probability under both and `tb`'s
/// under `b`, by the engine's vectorised argmax and log-softmax (a debug-built Swift softmax over the whole
/// vocabulary took most of these tests' time).
private func topTokens(_ a: [Float], _ b: [Float], row: Int, vocabulary: Int) -> (Int, Int, Float, Float, Float) {
    let range = row * vocabulary..<(row + 1) * vocabulary
    return a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            let (ra, rb) = (UnsafeBufferPointer(rebasing: a[range]), UnsafeBufferPointer(rebasing: b[range]))
            let (ta, tb) = (Sampler.argmax(ra), Sampler.argmax(rb))
            return (ta, tb, expf(logProbability(of: ta, in: ra)), expf(logProbability(of: ta, in: rb)), expf(logProbability(of: tb, in: rb)))
        }
    }
}
