import CollabCore
import Foundation
import LLM

/// Lossless speculative collaboration (`spec` mode): the edge drafts tokens with its exit at the
/// split while it is confident, running each draft through its layers so the cloud receives the
/// states; one VERIFY per draft lets the cloud keep the longest prefix that equals its own choice
/// and add its next token. The output is the full model's, with one round trip per draft instead of
/// one per token. Without the cloud it degrades to the drafts (marked degraded), like `collab`.
public final class SpeculativeRunner {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let options: EdgeOptions
    private let codec: HiddenStateCodec
    private let cloud: CloudSessionClient?

    public init(model: LlamaModel, tokenizer: Tokenizer, fingerprint: [UInt8], options: EdgeOptions,
                connector: CloudConnector?) throws {
        precondition(model.hasEmbeddings && model.hasHead, "the edge needs embeddings and the head")
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        codec = try HiddenStateCodec(format: options.wire, width: model.config.hiddenSize)
        cloud = connector.map {
            CloudSessionClient(connector: $0, fingerprint: fingerprint, splitLayer: model.layers.upperBound, options: options)
        }
    }

    public func generate(prompt: [Int], onText: (String) -> Void = { _ in }) async throws -> EdgeGenerationResult {
        guard !prompt.isEmpty else { throw EngineError.emptyInput }
        let capacity = min(options.maxPositions, model.config.contextLength)
        guard prompt.count < capacity else { throw EngineError.contextFull(needed: prompt.count + 1, capacity: capacity) }
        let split = model.layers.upperBound
        let drafter = options.exits.first { $0.layer == split } ?? ExitHead(layer: split, threshold: 0.5)
        let cache = model.makeCache(capacity: capacity)
        var log = UploadLog()
        var sampler = Sampler(parameters: options.sampling)
        var result = EdgeGenerationResult(text: "", tokens: [], logprobs: [], sources: [], promptTokens: prompt.count,
                                          stopReason: .maxTokens)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        let stops = TextGenerator.stopTokens(of: tokenizer)
        var history = prompt
        let start = Date()

        /// Runs tokens through the edge layers at the cache's end, logs their states, returns the last row.
        func runEdge(_ tokens: [Int]) throws -> HiddenStates {
            let t0 = Date()
            defer { result.edgeSeconds += Date().timeIntervalSince(t0) }
            var h = try model.embed(tokens)
            try model.forward(&h, cache: cache)
            log.record(try (0..<h.rows).map { try codec.encode(h.rows($0..<$0 + 1)) })
            return h.rows(h.rows - 1..<h.rows)
        }

        await cloud?.start(capacity: capacity, log: log)
        var last = try runEdge(prompt)
        generation: while true {
            let position = cache.count - 1  // `last` is this position's state
            // Draft while the split exit is confident (each draft's state is computed for the cloud).
            var drafts: [(token: Int, logprob: Float)] = []
            var cursor = last
            while drafts.count < options.maxDraftTokens, position + drafts.count + 2 < capacity {
                result.exitStats.checks += 1
                guard case .confident(let logits) = try drafter.decide(cursor, model: model) else { break }
                result.exitStats.fullHeads += 1
                let token = sampler.sample(logits: logits, history: history + drafts.map(\.token))
                drafts.append((token, logProbability(of: token, in: logits)))
                cursor = try runEdge([token])
                if stops.contains(token) { break }
            }
            result.speculation.rounds += 1
            result.speculation.drafted += drafts.count

            var emitted: [(token: Int, logprob: Float, source: String)] = []
            var reply: TokenReply?
            if let cloud {
                await cloud.upload(log: log)
                reply = drafts.isEmpty
                    ? await cloud.infer(position: position, history: history)
                    : await cloud.verify(firstPosition: position, draft: drafts.map(\.token))
            }
            var next: Int?  // a token still to run through the edge layers
            if let reply {
                result.cloudSeconds += reply.cloudSeconds
                result.speculation.accepted += reply.accepted
                emitted = drafts.prefix(reply.accepted).map { ($0.token, $0.logprob, "edge:\(split)") }
                emitted.append((reply.token, reply.logprob, "cloud"))
                let keep = position + reply.accepted + 1
                if cache.count > keep {
                    cache.truncate(to: keep)
                    log.truncate(to: keep)
                }
                next = reply.token
            } else if drafts.isEmpty {
                // Standalone or the cloud failed: the split exit answers alone.
                let logits = try drafter.logits(for: last, model: model)
                let token = sampler.sample(logits: logits, history: history)
                let degraded = cloud == nil ? "" : ":degraded"
                emitted = [(token, logProbability(of: token, in: logits), "edge:\(split)\(degraded)")]
                next = token
            } else {
                let degraded = cloud == nil ? "" : ":degraded"
                emitted = drafts.map { ($0.token, $0.logprob, "edge:\(split)\(degraded)") }
                last = cursor  // every draft already ran through the edge
            }
            if result.tokens.isEmpty { result.prefillSeconds = Date().timeIntervalSince(start) }
            for (token, logprob, source) in emitted {
                if stops.contains(token) {
                    result.stopReason = .endOfSequence
                    break generation
                }
                result.tokens.append(token)
                result.logprobs.append(logprob)
                result.sources.append(source)
                result.tokenSeconds.append(Date().timeIntervalSince(start))
                history.append(token)
                let piece = decoder.append(token)
                if !piece.isEmpty {
                    result.text += piece
                    onText(piece)
                }
                if result.tokens.count >= options.maxTokens { break generation }
            }
            if let next {
                guard cache.count + 1 <= capacity else {
                    result.stopReason = .contextFull
                    break
                }
                last = try runEdge([next])
            }
        }
        let tail = decoder.finish()
        if !tail.isEmpty {
            result.text += tail
            onText(tail)
        }
        result.decodeSeconds = Date().timeIntervalSince(start) - result.prefillSeconds
        if let cloud {
            await cloud.finish()
            result.traffic = cloud.traffic
            result.reconnects = cloud.reconnects
        }
        result.networkSeconds = max(0, result.traffic.networkSeconds - result.cloudSeconds)
        return result
    }
}
