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
public final class EdgeWorker: @unchecked Sendable {
    /// The modes `serve` offers: those that generate here.
    public static let modes: [GenerationMode] = [.local, .edge, .collab, .spec]

    /// Immutable after init; generations run one at a time (`queue`).
    private let setup: EdgeSetup
    private let connector: CloudConnector?
    let queue: RequestQueue

    /// `setup` is built for one of `modes`. At most `maxQueue` requests wait behind the running one;
    /// more are refused (`RequestQueue.QueueFull`).
    public init(setup: EdgeSetup, connector: CloudConnector?, maxQueue: Int = 16) {
        precondition(Self.modes.contains(setup.mode), "serve runs \(Self.modes.map(\.rawValue)), not \(setup.mode)")
        queue = RequestQueue(capacity: maxQueue)
        self.setup = setup
        self.connector = connector
    }

    public var mode: GenerationMode { setup.mode }
    public var tokenizer: Tokenizer { setup.tokenizer }
    public var contextLength: Int { min(setup.options.maxPositions, setup.model.config.contextLength) }

    public func generate(_ request: GenerationRequest, onText: @Sendable (String) -> Void) async throws -> GenerationResult {
        try await queue.acquire()
        defer { queue.release() }
        try Task.checkCancellation()
        if mode == .local {
            return try TextGenerator(model: setup.model, tokenizer: setup.tokenizer)
                .generate(prompt: request.prompt, maxTokens: request.maxTokens, sampling: request.sampling,
                          contextCapacity: contextLength, onText: onText)
        }
        var options = setup.options
        options.sampling = request.sampling
        options.maxTokens = request.maxTokens
        return try await setup.makeRunner(connector: connector, options: options)
            .generate(prompt: request.prompt, onPiece: { text, _ in onText(text) }).result
    }
}
