import Foundation
import XCTest
import TestSupport

@testable import LLM

/// Tokenizer tests: llama.cpp's tokenizer test vectors (`test-tokenizer-0`), the default model's
/// chat prompt, streaming decoding and round trips.
///
/// Data: `$COLLM_TEST_DATA` (default `<repo>/.cache/test-data`) must hold the vocab-only GGUFs and
/// their `.inp`/`.out` files — run `scripts/fetch-tokenizer-vectors.sh` (or
/// `scripts/fetch-test-data.sh`). The model comes from `$COLLM_MODEL` (default
/// `<repo>/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf`). Missing data fails the tests unless
/// `COLLM_ALLOW_MISSING_DATA=1`, which skips them instead.
final class TokenizerTests: XCTestCase {

    // MARK: - data

    static var testDataDir: String {
        ProcessInfo.processInfo.environment["COLLM_TEST_DATA"]
            ?? TestResources.repoRoot.appendingPathComponent(".cache/test-data").path
    }

    static func requireFile(_ path: String, hint: String) throws {
        if FileManager.default.fileExists(atPath: path) { return }
        let message = "\(path) is missing: \(hint)"
        if ProcessInfo.processInfo.environment["COLLM_ALLOW_MISSING_DATA"] == "1" { throw XCTSkip(message) }
        XCTFail(message)
        throw CocoaError(.fileNoSuchFile)
    }

    static let vectorsHint = "run scripts/fetch-tokenizer-vectors.sh (llama.cpp tokenizer vectors from the llama-cpp-python 0.3.36 sdist)"

    /// Tokenizers are immutable; load each file once per test run.
    nonisolated(unsafe) static var loaded: [String: Tokenizer] = [:]
    static let loadLock = NSLock()

    static func tokenizer(at path: String) throws -> Tokenizer {
        loadLock.lock()
        defer { loadLock.unlock() }
        if let t = loaded[path] { return t }
        let t = try Tokenizer(gguf: GGUFFile(path: path))
        loaded[path] = t
        return t
    }

    static func smolLM() throws -> Tokenizer {
        try tokenizer(at: try TestResources.modelPath())
    }

    /// Reads `<vocab>.inp` / `.out` the way llama.cpp's test-tokenizer-0 does: inputs separated by
    /// "\n__ggml_vocab_test__\n", one line of space-separated ids per input.
    static func readVectors(_ vocab: String) throws -> [(text: String, ids: [Int])] {
        let base = (testDataDir as NSString).appendingPathComponent("ggml-vocab-\(vocab).gguf")
        try requireFile(base + ".inp", hint: vectorsHint)
        try requireFile(base + ".out", hint: vectorsHint)
        let inp = try Data(contentsOf: URL(fileURLWithPath: base + ".inp"))
        let out = try String(contentsOfFile: base + ".out", encoding: .utf8)
        let sep = Array("\n__ggml_vocab_test__\n".utf8)
        var inputs: [String] = []
        let bytes = [UInt8](inp)
        var pos = 0
        while pos < bytes.count {
            var next = -1
            var i = pos
            while i + sep.count <= bytes.count {
                if bytes[i] == sep[0] && Array(bytes[i..<(i + sep.count)]) == sep {
                    next = i
                    break
                }
                i += 1
            }
            if next < 0 {
                inputs.append(String(decoding: bytes[pos...], as: UTF8.self))
                break
            }
            inputs.append(String(decoding: bytes[pos..<next], as: UTF8.self))
            pos = next + sep.count
        }
        var lines = out.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard inputs.count == lines.count else {
            XCTFail("\(vocab): \(inputs.count) inputs but \(lines.count) output lines")
            return []
        }
        return zip(inputs, lines).map { text, line in
            (text, line.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
        }
    }

    /// Encodes every vector (add_special = false, parse_special = false, as test-tokenizer-0).
    func checkVectors(_ vocab: String, roundTrip: Bool = true) throws {
        let path = (Self.testDataDir as NSString).appendingPathComponent("ggml-vocab-\(vocab).gguf")
        try Self.requireFile(path, hint: Self.vectorsHint)
        let tok = try Self.tokenizer(at: path)
        let vectors = try Self.readVectors(vocab)
        XCTAssertFalse(vectors.isEmpty)
        var passed = 0
        for (text, expected) in vectors {
            let got = tok.encode(text, addSpecial: false, parseSpecial: false)
            if got == expected {
                passed += 1
            } else {
                XCTFail("\(vocab): \(text.debugDescription)\n  expected \(expected)\n  got      \(got)")
            }
            if roundTrip {
                XCTAssertEqual(tok.decode(got), text, "\(vocab): decode(encode(s)) != s")
            }
        }
        print("tokenizer vectors \(vocab) (pre=\(tok.preTokenizerName ?? "nil")): \(passed)/\(vectors.count) passed")
    }

    // MARK: - llama.cpp vectors

    func testVectorsGPT2() throws { try checkVectors("gpt-2") }
    func testVectorsLlamaBPE() throws { try checkVectors("llama-bpe") }
    func testVectorsQwen2() throws { try checkVectors("qwen2") }
    func testVectorsStarcoder() throws { try checkVectors("starcoder") }
    // more pre-tokenizers, and SentencePiece vocabularies (tokenizer.ggml.model = llama)
    func testVectorsRefact() throws { try checkVectors("refact") }
    func testVectorsCommandR() throws { try checkVectors("command-r") }
    func testVectorsMPT() throws { try checkVectors("mpt") }
    func testVectorsFalcon() throws { try checkVectors("falcon") }
    func testVectorsLlamaSPM() throws { try checkVectors("llama-spm") }
    func testVectorsPhi3() throws { try checkVectors("phi-3") }

    // MARK: - default model

    static let chatPrompt =
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"

    func testSmolLMMetadata() throws {
        let tok = try Self.smolLM()
        XCTAssertEqual(tok.model, .gpt2)
        XCTAssertEqual(tok.preTokenizerName, "smollm")
        XCTAssertTrue(tok.preTokenizerRecognized)
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertFalse(tok.addBOS)
        XCTAssertEqual(tok.tokenId(for: "<|im_start|>"), 1)
        XCTAssertEqual(tok.tokenId(for: "<|im_end|>"), 2)
        XCTAssertTrue(tok.isControl(1))
        XCTAssertTrue(tok.isEndOfGeneration(2))
        XCTAssertEqual(tok.tokenText(1), "<|im_start|>")
        XCTAssertFalse(tok.isControl(9690))
    }

    func testSmolLMChatPrompt() throws {
        let tok = try Self.smolLM()
        let ids = tok.encode(Self.chatPrompt)
        let expected = [
            1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182,
            2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198,
        ]
        XCTAssertEqual(ids.count, 37)
        XCTAssertEqual(Array(ids.prefix(4)), [1, 9690, 198, 2683])
        XCTAssertEqual(Array(ids.suffix(4)), [1, 520, 9531, 198])
        XCTAssertEqual(ids, expected)
        XCTAssertEqual(tok.decode(ids), Self.chatPrompt)
        XCTAssertEqual(
            tok.decode(ids, skipSpecial: true),
            "system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\nuser\n"
                + "What is the capital of France?\nassistant\n")
        // without special-token parsing the markers are plain text
        let plain = tok.encode(Self.chatPrompt, parseSpecial: false)
        XCTAssertFalse(plain.contains(1))
        XCTAssertEqual(tok.decode(plain), Self.chatPrompt)
    }

    func testSmolLMSmallCases() throws {
        let tok = try Self.smolLM()
        // digits are split one by one, and the space before them stays a token of its own
        XCTAssertEqual(tok.encode("Hello world! 123"), [19556, 905, 17, 216, 33, 34, 35])
        XCTAssertEqual(tok.encode("\n"), [198])
        XCTAssertEqual(tok.encode(""), [])
        for s in ["Café déjà vu.", "  multiple   spaces", "tabs\tand\r\nnewlines\n\n\n", "x = f(3.14159) // 2e10"] {
            XCTAssertEqual(tok.decode(tok.encode(s)), s)
        }
    }

    // MARK: - round trips and streaming

    static let roundTripSamples = [
        "L'Étoile du Nord est une étoile.",
        "Emoji: 🦙🚀 👩‍👩‍👧‍👦 ✅ and flags 🇫🇷🇯🇵",
        "中文测试：我想在苹果工作。日本語のテキスト、한국어 텍스트",
        "Ελληνικά, русский, עברית, العربية, हिन्दी",
        "code:\n\tfor (int i = 0; i < 10; ++i) { x += i; }\n    return x;\n",
        "  leading and trailing spaces  ",
        "I'm sure they'll say we've done it, didn't we? IT'S FINE'LL",
        "numbers 1234567890 ١٢٣ ½ Ⅻ",
        "\u{0}\u{1}\u{7F} controls \u{85} \u{A0} \u{2028} \u{3000} odd spaces",
        "<|im_start|> not special here? <|endoftext|>",
    ]

    func testRoundTripSmolLM() throws {
        let tok = try Self.smolLM()
        for s in Self.roundTripSamples {
            XCTAssertEqual(tok.decode(tok.encode(s, parseSpecial: false)), s)
            XCTAssertEqual(tok.decode(tok.encode(s, parseSpecial: true)), s)
        }
    }

    func testStreamingDecoderHoldsBackPartialCharacters() throws {
        let tok = try Self.smolLM()
        for s in Self.roundTripSamples + ["L'Étoile", "🦙", "漢字", "é"] {
            let ids = tok.encode(s, parseSpecial: false)
            var decoder = StreamingDecoder(tokenizer: tok)
            var pieces: [String] = []
            for id in ids {
                let piece = decoder.append(id)
                XCTAssertFalse(piece.contains("\u{FFFD}"), "\(s.debugDescription): partial character emitted")
                pieces.append(piece)
            }
            pieces.append(decoder.finish())
            XCTAssertEqual(pieces.joined(), s)
        }
        // at least one of these must really split a character across tokens
        let emoji = tok.encode("🦙", parseSpecial: false)
        XCTAssertGreaterThan(emoji.count, 1, "expected the llama emoji to need several byte tokens")
        var decoder = StreamingDecoder(tokenizer: tok)
        XCTAssertEqual(decoder.append(emoji[0]), "")
        XCTAssertGreaterThan(decoder.pendingByteCount, 0)
    }

    func testStreamingDecoderWithByteTokens() throws {
        // a tiny byte-level vocabulary: every byte is its own token, no merges
        let tokens = (0..<256).map { GPT2ByteMap.encode([UInt8($0)]) } + ["<|end|>"]
        let types = [Int](repeating: 1, count: 256) + [3]
        let tok = try Tokenizer(tokens: tokens, types: types, merges: [], pre: "gpt-2", eos: 256)
        let text = "é漢🦙a"
        let ids = tok.encode(text)
        XCTAssertEqual(ids, Array(text.utf8).map { Int($0) })
        var decoder = StreamingDecoder(tokenizer: tok)
        var out: [String] = []
        for id in ids + [256] { out.append(decoder.append(id)) }
        // é = 2 bytes, 漢 = 3, 🦙 = 4: text appears only on the last byte of each
        XCTAssertEqual(out, ["", "é", "", "", "漢", "", "", "", "🦙", "a", "<|end|>"])
        XCTAssertEqual(decoder.finish(), "")
        var skipping = StreamingDecoder(tokenizer: tok, skipSpecial: true)
        XCTAssertEqual(skipping.append(contentsOf: ids + [256]), text)
        // an unfinished sequence is flushed as U+FFFD
        var cut = StreamingDecoder(tokenizer: tok)
        XCTAssertEqual(cut.append(contentsOf: Array(ids.prefix(4))), "é")
        XCTAssertEqual(cut.finish(), "\u{FFFD}")
        // stray continuation bytes are not held back forever
        var stray = StreamingDecoder(tokenizer: tok)
        XCTAssertEqual(stray.append(0x80), "\u{FFFD}")
    }

    func testSpecialTokenPrecedenceAndUserDefined() throws {
        // "ab" must be built from merges; "<x>" control, "<xy>" control (longer wins), "@@" user-defined
        let alphabet = (0..<256).map { GPT2ByteMap.encode([UInt8($0)]) }
        let tokens = alphabet + ["ab", "<x>", "<xy>", "@@"]
        let types = [Int](repeating: 1, count: 256) + [1, 3, 3, 4]
        let tok = try Tokenizer(tokens: tokens, types: types, merges: ["a b"], pre: "gpt-2")
        XCTAssertEqual(tok.encode("ab"), [256])
        XCTAssertEqual(tok.encode("<xy>ab<x>"), [258, 256, 257])
        XCTAssertEqual(tok.encode("<xy>", parseSpecial: false), Array("<xy>".utf8).map { Int($0) })
        XCTAssertEqual(tok.encode("a@@b", parseSpecial: false), [97, 259, 98])
        XCTAssertEqual(tok.decode([258, 256, 257], skipSpecial: true), "ab")
        XCTAssertEqual(tok.tokenId(for: "<x>"), 257)
    }

    func testUnsupportedModelOrPreTokenizerThrows() throws {
        XCTAssertThrowsError(try Tokenizer(tokens: ["a"], model: "bert")) { error in
            XCTAssertTrue("\(error)".contains("unsupported"), "\(error)")
        }
        XCTAssertThrowsError(try Tokenizer(tokens: ["a"], pre: "deepseek-llm")) { error in
            XCTAssertTrue("\(error)".contains("deepseek-llm"), "\(error)")
        }
        let fallback = try Tokenizer(tokens: ["a"], pre: "deepseek-llm", allowUnknownPreTokenizer: true)
        XCTAssertFalse(fallback.preTokenizerRecognized)
        XCTAssertTrue(try Tokenizer(tokens: ["a"], pre: nil).preTokenizerRecognized)  // missing = "default"
    }

    // MARK: - BPE internals

    /// The linear-scan merge loop (short words) and the heap (long words) must agree.
    func testMergeLoopsAgree() throws {
        let tok = try Self.smolLM()
        let merger = try XCTUnwrap(tok.merger)
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("eeeetttaaoinshrdlu  .,'-0123\n".utf8) + Array("é漢".utf8)
        for _ in 0..<300 {
            let n = Int.random(in: 3...40, using: &rng)
            let word = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            var a: [Int32] = []
            var b: [Int32] = []
            word.withUnsafeBufferPointer { w in
                merger.encode(w, into: &a)
                merger.encode(w, into: &b, forceHeap: true)
            }
            XCTAssertEqual(a, b, "\(word)")
        }
    }

    func testPreTokenizerSplits() {
        func split(_ pre: String, _ s: String) -> [String] {
            let cps = s.unicodeScalars.map { $0.value }
            let flags = cps.map { UnicodeClass.flags($0) }
            let ends = cps.withUnsafeBufferPointer { c in
                flags.withUnsafeBufferPointer { f in PreTokenizer(name: pre).split(c, f) }
            }
            var out: [String] = []
            var start = 0
            for e in ends {
                var v = String.UnicodeScalarView()
                for cp in cps[start..<e] { v.append(Unicode.Scalar(cp)!) }
                out.append(String(v))
                start = e
            }
            return out
        }
        XCTAssertEqual(split("gpt-2", "Hello world's  end 123!!"), ["Hello", " world", "'s", " ", " end", " 123", "!!"])
        XCTAssertEqual(split("smollm", "a 123b"), ["a", " ", "1", "2", "3", "b"])
        XCTAssertEqual(split("llama-bpe", "I'LL pay 12345\n\n  x"), ["I", "'LL", " pay", " ", "123", "45", "\n\n", " ", " x"])
        XCTAssertEqual(split("qwen2", "ab 12"), ["ab", " ", "1", "2"])
        XCTAssertEqual(split("default", "x=12345;"), ["x", "=", "123", "45", ";"])
        XCTAssertFalse(PreTokenizer(name: "no-such-pre").recognized)
    }

    // MARK: - speed

    func testEncodeSpeed() throws {
        let tok = try Self.smolLM()
        let botchan = (Self.testDataDir as NSString).appendingPathComponent("botchan.txt")
        var text: String
        if let s = try? String(contentsOfFile: botchan, encoding: .utf8) {
            text = String(s.prefix(100_000))
        } else {
            // synthetic English-like text
            let words = "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has when who will more no if out so said what up its about into than them can only other new some time could these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three".split(separator: " ")
            var g = SplitMix64(42)
            text = ""
            while text.utf8.count < 100_000 {
                text += words[Int(g.next() % UInt64(words.count))]
                let r = g.next() % 20
                text += r == 0 ? ". " : r == 1 ? ", " : r == 2 ? "\n" : r == 3 ? " \(g.next() % 1000) " : " "
            }
        }
        _ = tok.encode("warm-up")
        let start = Date()
        let ids = tok.encode(text, addSpecial: false, parseSpecial: true)
        let seconds = Date().timeIntervalSince(start)
        print(
            String(
                format: "encode speed: %d bytes -> %d tokens in %.1f ms (%.2f MB/s)", text.utf8.count, ids.count,
                seconds * 1000, Double(text.utf8.count) / seconds / 1e6))
        XCTAssertEqual(tok.decode(ids), text)
    }
}

