import Foundation
import XCTest
import TestSupport

@testable import LLM

final class ModelTests: XCTestCase {
    /// Reference figures (llama.cpp on the same file, and an f32 reference): an f32 reference and llama.cpp on the same file.
    private let firstTokenReferences: [String: Float] = ["The": -1.88, "L": -1.97]

    func testFranceFirstTokenMatchesReferences() throws {
        let (_, tokenizer, model) = try ModelFixture.load()
        let ids = tokenizer.encode(ModelFixture.francePrompt, addSpecial: true, parseSpecial: true)
        XCTAssertEqual(ids.count, 37)
        let cache = model.makeCache(capacity: 64)
        var hidden = try model.embed(ids)
        try model.forward(&hidden, cache: cache)
        let logits = try model.logits(hidden, rows: [ids.count - 1])
        let top = topCandidates(logits, k: 5)
        let best = tokenizer.tokenText(top[0].id)
        print("France top-5:", top.map { (tokenizer.tokenText($0.id), $0.logprob) })
        let reference = try XCTUnwrap(firstTokenReferences[best], "top-1 is \(best.debugDescription), expected The or L")
        XCTAssertEqual(top[0].logprob, reference, accuracy: 0.15)
        // Both reference tokens are near the top with logprobs near their references.
        for (text, lp) in firstTokenReferences {
            let id = try XCTUnwrap(tokenizer.tokenId(for: text))
            XCTAssertEqual(logProbability(of: id, in: logits), lp, accuracy: 0.15, "logprob of \(text)")
        }
    }

    func testFranceAnswerMentionsParis() throws {
        let (_, tokenizer, model) = try ModelFixture.load()
        let ids = tokenizer.encode(ModelFixture.francePrompt, addSpecial: true, parseSpecial: true)
        let generator = TextGenerator(model: model, tokenizer: tokenizer)
        let result = try generator.generate(prompt: ids, maxTokens: 40, sampling: .greedy)
        print("France answer:", result.text)
        XCTAssertTrue(result.text.contains("Paris"), result.text)
        XCTAssertEqual(result.tokens.count, result.logprobs.count)
    }

    func testIncrementalDecodeEqualsBatchedPrefill() throws {
        let (_, tokenizer, model) = try ModelFixture.load()
        let ids = tokenizer.encode("The quick brown fox jumps over the lazy dog because", addSpecial: false)
        let batchCache = model.makeCache(capacity: 64)
        var all = try model.embed(ids)
        try model.forward(&all, cache: batchCache)
        let batched = try model.logits(all)

        let stepCache = model.makeCache(capacity: 64)
        var stepped: [Float] = []
        for id in ids {
            var h = try model.embed([id])
            try model.forward(&h, cache: stepCache)
            stepped += try model.logits(h)
        }
        XCTAssertLessThan(relativeError(stepped, batched), 1e-4)
        XCTAssertEqual(stepCache.count, ids.count)
        XCTAssertLessThan(relativeError(stepCache.snapshot(layer: 29).keys, batchCache.snapshot(layer: 29).keys), 1e-5)
    }

    func testMultiSequenceBatchEqualsSeparateRuns() throws {
        let (_, tokenizer, model) = try ModelFixture.load()
        let a = tokenizer.encode("Once upon a time there was", addSpecial: false)
        let b = tokenizer.encode("def fibonacci(n):\n    return", addSpecial: false)
        func alone(_ ids: [Int]) throws -> [Float] {
            let cache = model.makeCache(capacity: 64)
            var h = try model.embed(ids)
            try model.forward(&h, cache: cache)
            return try model.logits(h, rows: [ids.count - 1])
        }
        let (ca, cb) = (model.makeCache(capacity: 64), model.makeCache(capacity: 64))
        // Different positions in one batch: a's prefix first, then a's last token together with all of b.
        var prefix = try model.embed(Array(a.dropLast()))
        try model.forward(&prefix, cache: ca)
        var joint = try model.embed([a.last!] + b)
        try model.forward(&joint, batch: [BatchSegment(cache: ca, position: a.count - 1, count: 1),
                                          BatchSegment(cache: cb, position: 0, count: b.count)])
        let logits = try model.logits(joint, rows: [0, b.count])
        let vocab = model.config.vocabularySize
        XCTAssertLessThan(relativeError(Array(logits[..<vocab]), try alone(a)), 1e-4)
        XCTAssertLessThan(relativeError(Array(logits[vocab...]), try alone(b)), 1e-4)
    }

    func testLayerRangesComposeToTheFullModel() throws {
        let (file, tokenizer, full) = try ModelFixture.load()
        let lower = try LlamaModel(file: file, layers: 0..<15, pool: ModelFixture.pool)
        let upper = try LlamaModel(file: file, layers: 15..<30, pool: ModelFixture.pool)
        XCTAssertTrue(lower.hasEmbeddings && !lower.hasHead)
        XCTAssertTrue(!upper.hasEmbeddings && upper.hasHead)
        // Each range reads only its own layers' tensors.
        let blockIndex = { (name: String) -> Int? in
            name.hasPrefix("blk.") ? Int(name.split(separator: ".")[1]) : nil
        }
        XCTAssertEqual(Set(lower.loadedTensors.compactMap(blockIndex)), Set(0..<15))
        XCTAssertEqual(Set(upper.loadedTensors.compactMap(blockIndex)), Set(15..<30))
        XCTAssertFalse(lower.loadedTensors.contains("output_norm.weight"))
        XCTAssertTrue(upper.loadedTensors.contains("output_norm.weight"))
        XCTAssertThrowsError(try upper.embed([1]))
        XCTAssertLessThan(upper.weightBytes, full.weightBytes * 3 / 4)

        let ids = tokenizer.encode(ModelFixture.francePrompt, addSpecial: true)
        let (split, whole) = try splitAndWholeLogits(lower: lower, upper: upper, full: full, ids: ids)
        XCTAssertLessThan(relativeError(split, whole), 1e-4)
    }

    func testBadInputsAreErrors() throws {
        let (_, _, model) = try ModelFixture.load()
        XCTAssertThrowsError(try model.embed([49_152])) { XCTAssertEqual($0 as? EngineError, .invalidToken(49_152, vocabularySize: 49_152)) }
        XCTAssertThrowsError(try model.embed([-1]))
        let cache = model.makeCache(capacity: 4)
        var h = try model.embed([1, 2, 3, 4, 5])
        XCTAssertThrowsError(try model.forward(&h, cache: cache)) {
            XCTAssertEqual($0 as? EngineError, .contextFull(needed: 5, capacity: 4))
        }
        XCTAssertEqual(cache.count, 0)
        var wrong = HiddenStates(rows: 1, width: 7)
        XCTAssertThrowsError(try model.forward(&wrong, cache: cache))
        XCTAssertThrowsError(try LlamaModel(file: model.file, layers: 10..<31, pool: ModelFixture.pool))
    }

    /// llama.cpp's llama-perplexity gets 31.11 on this slice (n_ctx 256, 40 chunks).
    func testPerplexityMatchesLlamaCpp() throws {
        let (_, tokenizer, model) = try ModelFixture.load()
        let text = try String(contentsOfFile: try TestResources.dataFile("botchan-chapter1-100k.txt"), encoding: .utf8)
        let tokens = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let result = try model.perplexity(tokens: tokens, context: 256, maxChunks: 40)
        print("perplexity: \(result.ppl) over \(result.tokens) tokens in \(result.seconds) s")
        XCTAssertEqual(result.chunks, 40)
        XCTAssertEqual(result.tokens, 40 * 127)
        XCTAssertEqual(result.ppl, 31.11, accuracy: 31.11 * 0.02)
    }
}

extension ModelTests {
    /// Running layers in pieces, with a token's upper layers deferred and computed together with
    /// the next token (as the edge does after an early exit), leaves exactly the KV cache and
    /// output of running every layer for every token in order.
    func testDeferredUpperLayersGiveTheSameCacheAndLogits() throws {
        let (_, tokenizer, model) = try ModelFixture.load()
        let ids = tokenizer.encode("Paris is the capital and largest city of France", addSpecial: false)
        let reference = model.makeCache(capacity: 64)
        var h = try model.embed(ids)
        try model.forward(&h, cache: reference)
        let expected = try model.logits(h, rows: [ids.count - 1])

        let cache = model.makeCache(capacity: 64)
        var pendingUpper = HiddenStates(rows: 0, width: model.config.hiddenSize)
        var last = HiddenStates(rows: 0, width: model.config.hiddenSize)
        for (i, id) in ids.enumerated() {
            var x = try model.embed([id])
            try model.forward(&x, cache: cache, only: 0..<10)
            pendingUpper.append(x)
            XCTAssertEqual(cache.count(layer: 9), i + 1)
            if i % 3 == 2 || i == ids.count - 1 {  // every third token completes the deferred rows
                try model.forward(&pendingUpper, cache: cache, only: 10..<30)
                last = pendingUpper.rows(pendingUpper.rows - 1..<pendingUpper.rows)
                pendingUpper = HiddenStates(rows: 0, width: model.config.hiddenSize)
            } else {
                XCTAssertLessThan(cache.count(layer: 29), i + 1)
            }
        }
        XCTAssertEqual(cache.count, ids.count)
        for layer in [0, 9, 10, 29] {
            XCTAssertLessThan(relativeError(cache.snapshot(layer: layer).keys, reference.snapshot(layer: layer).keys), 1e-5)
            XCTAssertLessThan(relativeError(cache.snapshot(layer: layer).values, reference.snapshot(layer: layer).values), 1e-5)
        }
        XCTAssertLessThan(relativeError(try model.logits(last), expected), 1e-4)
        // Rows may not skip positions in a layer that is behind.
        var gap = try model.embed([1])
        try model.forward(&gap, cache: cache, only: 0..<10)
        var ahead = try model.embed([2])
        XCTAssertThrowsError(try model.forward(&ahead, batch: [BatchSegment(cache: cache, position: ids.count + 1, count: 1)], only: 10..<30))
    }
}
