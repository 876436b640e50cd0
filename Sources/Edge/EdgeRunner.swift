import CollabCore
import Exits
import Foundation
import LLM

/// The edge runtime: layers [0, s) with early exits; confident tokens are emitted locally, others
/// are finished by the cloud, which receives every token's boundary state once, in order, as it is
/// produced. If the cloud is unreachable the edge answers alone (tokens marked degraded) and
/// replays its upload log once a reconnect succeeds.
public final class EdgeRunner: EdgeGenerator {
    private let parts: EdgeParts
    /// The last generation's edge KV cache (tests compare it with an every-layer run).
    private(set) var lastCache: KVCache?

    public init(model: LlamaModel, tokenizer: Tokenizer, fingerprint: [UInt8], options: EdgeOptions,
                connector: CloudConnector?) throws {
        parts = try EdgeParts(model: model, tokenizer: tokenizer, fingerprint: fingerprint, options: options, connector: connector)
    }

    public func generate(prompt: [Int], onPiece: (_ text: String, _ source: TokenSource) -> Void) async throws -> EdgeGeneration {
        try await parts.closingCloudOnError { try await run(prompt: prompt, onPiece: onPiece) }
    }

    private func run(prompt: [Int], onPiece: (_ text: String, _ source: TokenSource) -> Void) async throws -> EdgeGeneration {
        let (model, tokenizer, options, codec) = (parts.model, parts.tokenizer, parts.options, parts.codec)
        guard !prompt.isEmpty else { throw EngineError.emptyInput }
        let capacity = min(options.maxPositions, model.config.contextLength)
        guard prompt.count < capacity else { throw EngineError.contextFull(needed: prompt.count + 1, capacity: capacity) }
        let cache = model.makeCache(capacity: capacity)
        lastCache = cache
        let layers = DeferredLayers(model: model, exitLayers: options.exits.map(\.layer), cache: cache)
        var exitsByLayer = Dictionary(options.exits.map { ($0.layer, $0) }, uniquingKeysWith: { a, _ in a })
        // The exit at the split (if any) answers before asking the cloud; it is also the deepest exit.
        let splitExit = exitsByLayer[layers.split]
        let splitHead = options.splitHead ?? splitExit ?? ExitHead(layer: layers.split, threshold: 0)
        var log = UploadLog()
        var sampler = Sampler(parameters: options.sampling)
        var transcript = GenerationTranscript(prompt: prompt, tokenizer: tokenizer, maxTokens: options.maxTokens)
        var stats = ExitStatistics()
        var (edgeSeconds, cloudSeconds) = (0.0, 0.0)
        var input = prompt
        var rtt = RoundTripEstimate()
        let cloud = options.mode == .collab ? parts.cloud : nil
        try await cloud?.start(capacity: capacity, log: log)

        while options.maxTokens > 0 {
            // A cancelled request (serve: the client left) stops within one token.
            try Task.checkCancellation()
            // Edge layers for the new rows, stopping at the first confident exit.
            let edgeStart = Date()
            var exitDecision: (layer: Int, logits: [Float])?
            func check(_ head: ExitHead, _ hidden: HiddenStates) throws -> Bool {
                stats.checks += 1
                switch try head.decide(hidden, model: model) {
                case .confident(let logits, let fullHead):
                    if fullHead { stats.fullHeads += 1 }
                    exitDecision = (head.layer, logits)
                    return true
                case .notConfident(let screened):
                    if !screened { stats.fullHeads += 1 }
                    return false
                }
            }
            let reached = try layers.advance(try model.embed(input)) { layer, position, hidden in
                guard let head = exitsByLayer[layer] else { return false }
                try head.observe(hidden, at: position)
                return try check(head, hidden)
            }
            if let reached {
                // Sequence blocks at the split see every position (the split exit, and a separate drafter head).
                try exitsByLayer[layers.split]?.observe(reached.rows, at: reached.position)
                if let extra = options.splitHead, extra.adapter !== exitsByLayer[layers.split]?.adapter {
                    try extra.observe(reached.rows, at: reached.position)
                }
            }
            if let reached, options.mode == .collab, let head = splitExit.map({ exitsByLayer[$0.layer] ?? $0 }) {
                _ = try check(head, reached.rows)
            }
            var decided: (token: Int, logprob: Float, source: TokenSource)?
            if let exitDecision {
                let token = sampler.sample(logits: exitDecision.logits, history: transcript.history)
                decided = (token, logProbability(of: token, in: exitDecision.logits), .edge(layer: exitDecision.layer))
            }
            if let reached {
                try log.record(reached.rows, codec: codec)
            }
            edgeSeconds += Date().timeIntervalSince(edgeStart)

            if let cloud {
                try await cloud.upload(log: log)
                if decided == nil, let reached {
                    let position = reached.position + reached.rows.rows - 1
                    let asked = Date()
                    if let reply = try await cloud.infer(position: position, history: transcript.history, log: log) {
                        decided = (reply.token, reply.logprob, .cloud)
                        cloudSeconds += reply.cloudSeconds
                        if let policy = options.latencyAware {
                            rtt.record(Date().timeIntervalSince(asked) - reply.cloudSeconds)
                            for (layer, base) in options.exits.map({ ($0.layer, $0.threshold) }) {
                                exitsByLayer[layer]?.threshold = policy.threshold(base: base, roundTrip: rtt.seconds)
                            }
                        }
                    }
                }
            }
            if decided == nil, let reached {
                // Standalone, or the cloud failed: the deepest exit answers.
                let logits = try splitHead.logits(for: reached.rows, model: model)
                let token = sampler.sample(logits: logits, history: transcript.history)
                let source: TokenSource = options.mode == .collab ? .degraded(layer: layers.split) : .edge(layer: layers.split)
                decided = (token, logProbability(of: token, in: logits), source)
            }
            guard let (token, logprob, source) = decided else { throw EngineError.emptyInput }
            guard transcript.emit(token, logprob: logprob, source: source, onPiece: onPiece) else { break }
            if layers.positions + 1 > capacity {
                transcript.stop(.contextFull)
                break
            }
            input = [token]
        }
        var generation = EdgeGeneration(result: transcript.finish(onPiece: onPiece))
        generation.exitStats = stats
        generation.result.edgeSeconds = edgeSeconds
        generation.result.cloudSeconds = cloudSeconds
        await cloud?.finish(into: &generation)
        generation.roundTripSeconds = rtt.seconds
        generation.finalThresholds = Dictionary(exitsByLayer.map { ($0.key, $0.value.threshold) }, uniquingKeysWith: { a, _ in a })
        return generation
    }
}
