import CollabCore
import Edge
import Foundation
import LLM

/// What the API server asks of the edge: one generation, streamed as text pieces.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
}

/// Runs generations on the edge model one at a time, in arrival order (the model holds one KV
/// cache and its kernels already use every core), in the configured mode, with a bounded queue. A
/// generation whose task is cancelled (its client left) stops within one token.
public final class EdgeWorker: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case local, edge, collab, spec }

    public let mode: Mode
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    private let fingerprint: [UInt8]
    private let options: EdgeOptions
    private let connector: CloudConnector?
    let queue: RequestQueue

    /// `model` is the full model for `local`, else the edge part [0, s) with its head. At most
    /// `maxQueue` requests wait behind the running one; more are refused (`RequestQueue.QueueFull`).
    public init(mode: Mode, model: LlamaModel, tokenizer: Tokenizer, fingerprint: [UInt8], options: EdgeOptions,
                connector: CloudConnector?, maxQueue: Int = 16) {
        queue = RequestQueue(capacity: maxQueue)
        self.mode = mode
        self.model = model
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.options = options
        self.connector = connector
    }

    public var contextLength: Int { min(options.maxPositions, model.config.contextLength) }

    public func generate(_ request: GenerationRequest, onText: @Sendable (String) -> Void) async throws -> EdgeGenerationResult {
        try await queue.acquire()
        defer { queue.release() }
        try Task.checkCancellation()
        var options = self.options
        options.sampling = request.sampling
        options.maxTokens = request.maxTokens
        switch mode {
        case .local:
            let r = try TextGenerator(model: model, tokenizer: tokenizer)
                .generate(prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling,
                          contextCapacity: contextLength, onText: onText)
            var out = EdgeGenerationResult(text: r.text, tokens: r.tokens, logprobs: r.logprobs,
                                           sources: Array(repeating: "local", count: r.tokens.count),
                                           promptTokens: r.promptTokens, stopReason: r.stopReason)
            out.prefillSeconds = r.prefillSeconds
            out.decodeSeconds = r.decodeSeconds
            return out
        case .edge, .collab:
            options.mode = mode == .edge ? .standalone : .collaborative
            return try await EdgeRunner(model: model, tokenizer: tokenizer, fingerprint: fingerprint, options: options,
                                        connector: mode == .collab ? connector : nil).generate(prompt: request.prompt, onText: onText)
        case .spec:
            return try await SpeculativeRunner(model: model, tokenizer: tokenizer, fingerprint: fingerprint, options: options,
                                               connector: connector).generate(prompt: request.prompt, onText: onText)
        }
    }
}
