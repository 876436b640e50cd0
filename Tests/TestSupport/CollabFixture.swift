import CollabCore
import Foundation
import XCTest

import Cloud
import Edge
import LLM

/// The default model split at layer 15: a cloud engine for [15, 30) and an edge model for [0, 15).
public enum CollabFixture {
    public struct Parts {
        public let file: GGUFFile
        public let tokenizer: Tokenizer
        public let full: LlamaModel
        public let edge: LlamaModel
        public let fingerprint: [UInt8]
        public let engine: CloudEngine
        public let manager: ContextManager
    }

    nonisolated(unsafe) private static var cached: [ActivationPrecision: Parts] = [:]
    public static let split = 15

    /// The parts with every matrix product in the given activation precision (edge, cloud and full model alike).
    public static func load(activations: ActivationPrecision = .int8) throws -> Parts {
        if let parts = cached[activations] { return parts }
        let path = try TestResources.modelPath()
        let file = try GGUFFile(path: path)
        let edgePool = ThreadPool(threadCount: 1)
        let cloudPool = ThreadPool(threadCount: 1)
        let fingerprint = file.fingerprint()
        let cloudModel = try LlamaModel(file: file, layers: split..<30, activations: activations, pool: cloudPool)
        let manager = ContextManager(model: cloudModel, fingerprint: fingerprint)
        let parts = Parts(
            file: file, tokenizer: try Tokenizer(gguf: file), full: try LlamaModel(file: file, activations: activations, pool: edgePool),
            edge: try LlamaModel(file: file, layers: 0..<split, head: true, activations: activations, pool: edgePool),
            fingerprint: fingerprint, engine: CloudEngine(manager: manager), manager: manager)
        cached[activations] = parts
        return parts
    }

    public static func chat(_ text: String, _ tokenizer: Tokenizer) -> [Int] {
        tokenizer.encode(ChatTemplate.chatML.render([ChatMessage(role: "user", content: text)]))
    }

    public static let prompts = [
        "What is the capital of France?", "Name three primary colors.", "Write a haiku about the sea.",
        "What is 12 times 12?", "Give me a synonym for happy.", "Who wrote Romeo and Juliet?",
        "Explain photosynthesis in one sentence.", "List two uses of copper.", "What does a thermometer measure?",
        "Translate 'good morning' into Spanish.",
    ]
}
