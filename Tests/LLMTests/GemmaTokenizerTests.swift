import Foundation
import XCTest
import TestSupport

@testable import LLM

/// The Gemma 3 file's SentencePiece vocabulary (262,144 tokens, no space prefix, BOS added) against
/// llama.cpp: ids from `llama_tokenize` with add_special and parse_special (what `llama-tokenize`
/// prints) in the sdist's libllama (0.3.36), on the same file.
final class GemmaTokenizerTests: XCTestCase {
    private func tokenizer() throws -> Tokenizer { try Tokenizer(gguf: try GGUFFile(path: try TestResources.gemmaModelPath())) }

    func testTextsMatchLlamaCpp() throws {
        let tok = try tokenizer()
        XCTAssertEqual(tok.model, .llama)
        let cases: [(String, [Int])] = [
            ("Hello world", [2, 9259, 1902]),
            (" Hello world", [2, 26352, 1902]),
            ("  two leading spaces and trailing  ", [2, 138, 13498, 5830, 9952, 532, 45330, 138]),
            ("multiple   spaces\n\nnew lines\ttabs\r", [2, 43819, 139, 35220, 108, 1951, 4463, 255968, 39218, 251]),
            ("Ünïcödé naïve café 日本語の文章 🦙🚀 emoji",
             [2, 238194, 236749, 238527, 236755, 55515, 236859, 120362, 33443, 33375, 238582, 236945, 30886, 236743,
              478, 397, 404, 391, 242015, 64334]),
            ("<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model",
             [2, 105, 2364, 107, 3689, 563, 506, 5279, 529, 7001, 236881, 106, 107, 105, 4368]),
            ("3.14159 1234567890 x=42; y+=0x1F",
             [2, 236800, 236761, 236770, 236812, 236770, 236810, 236819, 236743, 236770, 236778, 236800, 236812, 236810,
              236825, 236832, 236828, 236819, 236771, 1123, 236784, 236812, 236778, 236793, 570, 23927, 236771, 236781,
              236770, 236811]),
            ("def f(x):\n    return x**2  # square",
             [2, 2063, 517, 236769, 236781, 1473, 107, 140, 2060, 1123, 1018, 236778, 138, 236865, 6281]),
            ("\u{01}\u{7F} control\u{A0}nbsp", [2, 249732, 251541, 2256, 432, 398, 11539]),
        ]
        for (text, expected) in cases {
            let ids = tok.encode(text, addSpecial: true, parseSpecial: true)
            XCTAssertEqual(ids, expected, text.debugDescription)
            XCTAssertEqual(tok.decode(Array(ids.dropFirst())), text, "round trip of \(text.debugDescription)")
        }
    }

    /// All of Botchan from "CHAPTER I" (100,000 characters): llama.cpp makes 25,081 tokens whose
    /// digest (h = h * 1000003 + id, mod 2^64) is 17923433007209005548.
    func testBotchanMatchesLlamaCpp() throws {
        let tok = try tokenizer()
        let text = try String(contentsOfFile: try TestResources.dataFile("botchan-chapter1-100k.txt"), encoding: .utf8)
        let ids = tok.encode(text, addSpecial: true, parseSpecial: true)
        XCTAssertEqual(ids.count, 25_081)
        XCTAssertEqual(ids.reduce(UInt64(0)) { $0 &* 1_000_003 &+ UInt64($1) }, 17_923_433_007_209_005_548)
    }
}
