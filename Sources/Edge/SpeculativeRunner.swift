import CollabCore
import Exits
import Foundation
import LLM

/// Lossless speculative collaboration (`spec` mode): the edge drafts tokens with its exit at the
/// split while it is confident, running each draft through its layers so the cloud receives the
/// states; one VERIFY per draft lets the cloud keep the longest prefix that equals its own choice
/// and add its next token. The output is the full model's, with one round trip per draft instead of
/// one per token. Without the cloud it degrades to the drafts (marked degraded), like `collab`.
public final class SpeculativeRunner: EdgeGenerator {
    private let parts: EdgeParts

    public init(model: LlamaModel, tokenizer: Tokenizer, fingerprint: [UInt8], options: EdgeOptions,
                connector: CloudConnector?) throws {
        parts = try EdgeParts(model: model, tokenizer: tokenizer, fingerprint: fingerprint, options: options, connector: connector)
    }

    public func generate(prompt: [Int], onPiece: (_ text: String, _ source: TokenSource) -> Void) async throws -> EdgeGeneration {
        try await parts.closingCloudOnError { try await run(prompt: prompt, onPiece: onPiece) }
    }

    private func run(prompt: [Int], onPiece: (_ text: String, _ source: TokenSource) -> Void) async throws -> EdgeGeneration {
        let (model, tokenizer, options, codec, cloud) = (parts.model, parts.tokenizer, parts.options, parts.codec, parts.cloud)
        guard !prompt.isEmpty else { throw EngineError.emptyInput }
        let capacity = min(options.maxPositions, model.config.contextLength)
        guard prompt.count < capacity else { throw EngineError.contextFull(needed: prompt.count + 1, capacity: capacity) }
        let split = model.layers.upperBound
        let drafter = options.exits.first { $0.layer == split } ?? ExitHead(layer: split, threshold: options.draftThreshold)
        let cache = model.makeCache(capacity: capacity)
        var log = UploadLog()
        var sampler = Sampler(parameters: options.sampling)
        var transcript = GenerationTranscript(prompt: prompt, tokenizer: tokenizer, maxTokens: options.maxTokens)
        var stats = ExitStatistics()
        var speculation = SpeculationStatistics()
        var (edgeSeconds, cloudSeconds) = (0.0, 0.0)

        /// Runs tokens through the edge layers at the cache's end, logs their states, returns the last row.
        func runEdge(_ tokens: [Int]) throws -> HiddenStates {
            let t0 = Date()
            defer { edgeSeconds += Date().timeIntervalSince(t0) }
            var h = try model.embed(tokens)
            let position = cache.count
            try model.forward(&h, cache: cache)
            try drafter.observe(h, at: position)
            try log.record(h, codec: codec)
            return h.rows(h.rows - 1..<h.rows)
        }

        try await cloud?.start(capacity: capacity, log: log)
        var last = try runEdge(prompt)
        generation: while options.maxTokens > 0 {
            try Task.checkCancellation()  // a cancelled request (serve: the client left) stops within one round
            let position = cache.count - 1  // `last` is this position's state
            // Draft while the split exit is confident (each draft's state is computed for the cloud).
            var drafts: [(token: Int, logprob: Float)] = []
            var cursor = last
            while drafts.count < options.maxDraftTokens, position + drafts.count + 2 < capacity {
                stats.checks += 1
                guard case .confident(let logits, let fullHead) = try drafter.decide(cursor, model: model) else { break }
                if fullHead { stats.fullHeads += 1 }
                let token = sampler.sample(logits: logits, history: transcript.history + drafts.map(\.token))
                drafts.append((token, logProbability(of: token, in: logits)))
                cursor = try runEdge([token])
                if transcript.isStop(token) { break }
            }
            speculation.rounds += 1
            speculation.drafted += drafts.count

            var emitted: [(token: Int, logprob: Float, source: TokenSource)] = []
            var reply: TokenReply?
            if let cloud {
                try await cloud.upload(log: log)
                reply = drafts.isEmpty
                    ? try await cloud.infer(position: position, history: transcript.history, log: log)
                    : try await cloud.verify(firstPosition: position, draft: drafts.map(\.token), log: log)
            }
            var next: Int?  // a token still to run through the edge layers
            // Without a cloud configured the drafts are the standalone answer; with one that failed, degraded.
            let alone: TokenSource = cloud == nil ? .edge(layer: split) : .degraded(layer: split)
            if let reply {
                cloudSeconds += reply.cloudSeconds
                speculation.accepted += reply.accepted
                emitted = drafts.prefix(reply.accepted).map { ($0.token, $0.logprob, TokenSource.edge(layer: split)) }
                emitted.append((reply.token, reply.logprob, .cloud))
                let keep = position + reply.accepted + 1
                if cache.count > keep {
                    cache.truncate(to: keep)
                    log.truncate(to: keep)
                    drafter.truncate(to: keep)
                }
                next = reply.token
            } else if drafts.isEmpty {
                // Standalone or the cloud failed: the split exit answers alone.
                let logits = try drafter.logits(for: last, model: model)
                let token = sampler.sample(logits: logits, history: transcript.history)
                emitted = [(token, logProbability(of: token, in: logits), alone)]
                next = token
            } else {
                emitted = drafts.map { ($0.token, $0.logprob, alone) }
                last = cursor  // every draft already ran through the edge
            }
            for (token, logprob, source) in emitted {
                guard transcript.emit(token, logprob: logprob, source: source, onPiece: onPiece) else { break generation }
            }
            if let next {
                guard cache.count + 1 <= capacity else {
                    transcript.stop(.contextFull)
                    break
                }
                last = try runEdge([next])
            }
        }
        var generation = EdgeGeneration(result: transcript.finish(onPiece: onPiece))
        generation.exitStats = stats
        generation.speculation = speculation
        generation.result.edgeSeconds = edgeSeconds
        generation.result.cloudSeconds = cloudSeconds
        await cloud?.finish(into: &generation)
        return generation
    }
}
