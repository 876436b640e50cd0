import Foundation
import XCTest
import TestSupport

@testable import LLM

final class GGUFTests: XCTestCase {
    private func sample() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", string: "llama")
        b.add("llama.block_count", uint32: 2)
        b.add("general.name", string: "tiny ünïcode")
        b.add("tokenizer.ggml.tokens", strings: ["a", "b", "<|im_start|>"])
        b.add("tokenizer.ggml.token_type", int32s: [1, 1, 3])
        b.add("llama.rope.freq_base", float32: 100_000)
        b.addTensor("t.weight", shape: [4, 2], values: [1, 2, 3, 4, 5, 6, 7, 8])
        b.addTensor("u.weight", shape: [3], values: [-1, 0, 1])
        return b
    }

    func testReadsMetadataAndTensors() throws {
        let file = TemporaryFile(sample().build())
        let gguf = try GGUFFile(path: file.path)
        XCTAssertEqual(gguf.version, 3)
        XCTAssertEqual(gguf.string("general.architecture"), "llama")
        XCTAssertEqual(gguf.string("general.name"), "tiny ünïcode")
        XCTAssertEqual(gguf.int("llama.block_count"), 2)
        XCTAssertEqual(gguf.double("llama.rope.freq_base"), 100_000)
        XCTAssertEqual(gguf.strings("tokenizer.ggml.tokens"), ["a", "b", "<|im_start|>"])
        XCTAssertEqual(gguf.ints("tokenizer.ggml.token_type"), [1, 1, 3])
        let t = try XCTUnwrap(gguf.tensor(named: "t.weight"))
        XCTAssertEqual(t.shape, [4, 2])
        XCTAssertEqual(t.rows, 2)
        XCTAssertEqual(t.columns, 4)
        XCTAssertEqual(t.byteCount, 32)
        XCTAssertEqual(t.fileOffset % 32, 0)
        let floats = gguf.data(for: t).withMemoryRebound(to: Float.self) { Array($0) }
        XCTAssertEqual(floats, [1, 2, 3, 4, 5, 6, 7, 8])
        let u = try XCTUnwrap(gguf.tensor(named: "u.weight"))
        XCTAssertEqual(gguf.data(for: u).withMemoryRebound(to: Float.self) { Array($0) }, [-1, 0, 1])
    }

    func testEveryTruncationIsRejectedWithAnError() throws {
        let full = sample().build()
        // Cutting anywhere before the last tensor's end must fail cleanly (never crash or read past the end).
        for length in stride(from: 0, to: full.count - 20, by: 1) {
            let file = TemporaryFile(full.prefix(length))
            XCTAssertThrowsError(try GGUFFile(path: file.path), "prefix of \(length) bytes was accepted") { error in
                XCTAssertTrue(error is GGUFError, "\(error)")
            }
        }
    }

    func testCorruptedBytesNeverCrash() throws {
        let full = sample().build()
        var rng = SplitMix64(seed: 42)
        var rejected = 0
        for _ in 0..<2000 {
            var bytes = [UInt8](full)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            let file = TemporaryFile(Data(bytes))
            do {
                let gguf = try GGUFFile(path: file.path)
                for t in gguf.tensors { _ = gguf.data(for: t).reduce(0, &+) }  // in-bounds by construction
            } catch {
                XCTAssertTrue(error is GGUFError)
                rejected += 1
            }
        }
        XCTAssertGreaterThan(rejected, 100)
    }

    func testSpecificMalformations() throws {
        func rejects(_ data: Data, _ expected: String, line: UInt = #line) {
            let file = TemporaryFile(data)
            XCTAssertThrowsError(try GGUFFile(path: file.path), line: line) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) does not mention '\(expected)'", line: line)
            }
        }
        var full = sample().build()
        rejects(Data("GGUX".utf8) + full.dropFirst(4), "bad magic")
        full.replaceSubrange(4..<8, with: GGUFBuilder.le(UInt32(7)))
        rejects(full, "unsupported GGUF version 7")
        rejects(Data(), "empty")

        var huge = Data("GGUF".utf8) + GGUFBuilder.le(UInt32(3)) + GGUFBuilder.le(UInt64(0)) + GGUFBuilder.le(UInt64(1))
        huge += GGUFBuilder.le(UInt64(1 << 40))  // key length
        rejects(huge, "exceeds the limit")

        var b = GGUFBuilder()
        b.addTensor("q", shape: [33], type: 2, bytes: Data(count: 64))
        rejects(b.build(), "does not fit Q4_0 blocks")

        var c = GGUFBuilder()
        c.addTensor("x", shape: [1 << 20], values: [1, 2])
        rejects(c.build(), "truncated")

        let missing = "/nonexistent/collm/model.gguf"
        XCTAssertThrowsError(try GGUFFile(path: missing)) { XCTAssertTrue("\($0)".contains("cannot open")) }
    }

    func testOverlappingTensorsAreRejected() throws {
        var b = sample()
        b.offsetOverrides["u.weight"] = 0  // u's 12 bytes would alias the start of t's 32
        let file = TemporaryFile(b.build())
        XCTAssertThrowsError(try GGUFFile(path: file.path)) { error in
            XCTAssertTrue("\(error)".contains("overlap"), "\(error)")
        }
    }

    /// Hyperparameters that would silently make every output NaN are refused when the model loads.
    func testNonFiniteHyperparametersAreRejected() throws {
        func config(rmsEpsilon: Float, ropeBase: Float) throws -> ModelConfig {
            var b = GGUFBuilder()
            b.add("general.architecture", string: "llama")
            b.add("llama.block_count", uint32: 1)
            b.add("llama.embedding_length", uint32: 4)
            b.add("llama.feed_forward_length", uint32: 8)
            b.add("llama.attention.head_count", uint32: 2)
            b.add("llama.attention.layer_norm_rms_epsilon", float32: rmsEpsilon)
            b.add("llama.rope.freq_base", float32: ropeBase)
            b.addTensor("token_embd.weight", shape: [4, 3], values: [Float](repeating: 0.5, count: 12))
            let file = TemporaryFile(b.build())
            return try ModelConfig(gguf: GGUFFile(path: file.path))
        }
        XCTAssertEqual(try config(rmsEpsilon: 1e-5, ropeBase: 10_000).vocabularySize, 3)
        for (eps, base, key) in [(Float.nan, Float(10_000), "layer_norm_rms_epsilon"), (-1, 10_000, "layer_norm_rms_epsilon"),
                                 (1e-5, .nan, "rope.freq_base"), (1e-5, .infinity, "rope.freq_base")] {
            XCTAssertThrowsError(try config(rmsEpsilon: eps, ropeBase: base), "eps \(eps) base \(base)") { error in
                XCTAssertTrue("\(error)".contains(key), "\(error)")
            }
        }
    }

    func testDefaultModelDirectory() throws {
        let gguf = try GGUFFile(path: try TestResources.modelPath())
        XCTAssertEqual(gguf.string("general.architecture"), "llama")
        XCTAssertEqual(gguf.tensors.count, 272)  // 30 layers x 9 + token_embd + output_norm
        XCTAssertNil(gguf.tensor(named: "output.weight"))  // tied embeddings
        XCTAssertEqual(gguf.tensor(named: "token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(gguf.tensor(named: "blk.0.attn_q.weight")?.type, .q4_1)
        XCTAssertEqual(gguf.tensor(named: "blk.0.attn_norm.weight")?.type, .f32)
        let config = try ModelConfig(gguf: gguf)
        XCTAssertEqual(config.layerCount, 30)
        XCTAssertEqual(config.hiddenSize, 576)
        XCTAssertEqual(config.headCount, 9)
        XCTAssertEqual(config.kvHeadCount, 3)
        XCTAssertEqual(config.headDim, 64)
        XCTAssertEqual(config.feedForwardSize, 1536)
        XCTAssertEqual(config.vocabularySize, 49_152)
        XCTAssertEqual(config.ropeBase, 100_000)
        XCTAssertEqual(config.ropeStyle, .adjacentPairs)
    }
}
