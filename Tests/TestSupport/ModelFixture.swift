import Foundation
import XCTest

import LLM

/// The default model, opened once for all tests in the process (loading packs ~100 MB of weights).
public enum ModelFixture {
    nonisolated(unsafe) private static var cached: (GGUFFile, Tokenizer, LlamaModel)?
    public static let pool = ThreadPool(threadCount: 2)

    public static func load() throws -> (file: GGUFFile, tokenizer: Tokenizer, model: LlamaModel) {
        if let cached { return cached }
        let file = try GGUFFile(path: try TestResources.modelPath())
        let value = (file, try Tokenizer(gguf: file), try LlamaModel(file: file, pool: pool))
        cached = value
        return value
    }

    public static let francePrompt =
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
}

/// ||a - b|| / ||b||
public func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num += Double(x - y) * Double(x - y)
        den += Double(y) * Double(y)
    }
    return (num / max(den, 1e-30)).squareRoot()
}
