import CollabCore
import Foundation
import LLM

/// The edge runtime: layers [0, s) with early exits; confident tokens are emitted locally, others
/// are finished by the cloud, which receives every token's boundary state once, in order, as it is
/// produced. If the cloud is unreachable the edge answers alone (tokens marked degraded) and
/// replays its upload log once a reconnect succeeds.
public final class EdgeRunner {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let options: EdgeOptions
    private let connector: CloudConnector?
    private let fingerprint: [UInt8]
    private let codec: HiddenStateCodec

    // Cloud session state.
    private var link: CloudLink?
    private var session: SessionID?
    private var sent = 0  // positions of the log sent on the current link
    private var retryAt = Date.distantPast
    private var backoff: Double
    private var finishedTraffic = LinkTraffic()
    private var reconnects = 0

    public init(model: LlamaModel, tokenizer: Tokenizer, fingerprint: [UInt8], options: EdgeOptions,
                connector: CloudConnector?) throws {
        precondition(model.hasEmbeddings && model.hasHead, "the edge needs embeddings and the head")
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.connector = connector
        self.fingerprint = fingerprint
        codec = try HiddenStateCodec(format: options.wire, width: model.config.hiddenSize)
        backoff = options.initialBackoffSeconds
    }

    public func generate(prompt: [Int], onText: (String) -> Void = { _ in }) async throws -> EdgeGenerationResult {
        guard !prompt.isEmpty else { throw EngineError.emptyInput }
        let capacity = min(options.maxPositions, model.config.contextLength)
        guard prompt.count < capacity else { throw EngineError.contextFull(needed: prompt.count + 1, capacity: capacity) }
        let cache = model.makeCache(capacity: capacity)
        let layers = DeferredLayers(model: model, exitLayers: options.exits.map(\.layer), cache: cache)
        let exitsByLayer = Dictionary(options.exits.map { ($0.layer, $0) }, uniquingKeysWith: { a, _ in a })
        let splitHead = options.splitHead ?? ExitHead(layer: layers.split, threshold: 0)
        var log = UploadLog()
        var sampler = Sampler(parameters: options.sampling)
        var result = EdgeGenerationResult(text: "", tokens: [], logprobs: [], sources: [], promptTokens: prompt.count,
                                          stopReason: .maxTokens)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        let stops = TextGenerator.stopTokens(of: tokenizer)
        var history = prompt
        var input = prompt
        let start = Date()
        var step = 0
        if options.mode == .collaborative { await ensureLink(log: log) }

        while true {
            // Edge layers for the new rows, stopping at the first confident exit.
            let edgeStart = Date()
            var exitDecision: (layer: Int, logits: [Float])?
            let reached = try layers.advance(try model.embed(input)) { layer, hidden in
                guard let head = exitsByLayer[layer] else { return false }
                let logits = try head.logits(for: hidden, model: model)
                if confidence(of: logits) >= head.threshold {
                    exitDecision = (layer, logits)
                    return true
                }
                return false
            }
            var decided: (token: Int, logprob: Float, source: String)?
            if let exitDecision {
                let token = sampler.sample(logits: exitDecision.logits, history: history)
                decided = (token, logProbability(of: token, in: exitDecision.logits), "edge:\(exitDecision.layer)")
            }
            if let reached {
                log.record(try (0..<reached.rows.rows).map { try codec.encode(reached.rows.rows($0..<$0 + 1)) })
            }
            result.edgeSeconds += Date().timeIntervalSince(edgeStart)

            if options.mode == .collaborative {
                await upload(log: log)
                if decided == nil, let reached {
                    let position = reached.position + reached.rows.rows - 1
                    if let reply = await infer(position: position, history: history, log: log) {
                        decided = (reply.token, reply.logprob, "cloud")
                        result.cloudSeconds += reply.cloudSeconds
                    }
                }
            }
            if decided == nil, let reached {
                // Standalone, or the cloud failed: the deepest exit answers.
                let logits = try splitHead.logits(for: reached.rows, model: model)
                let token = sampler.sample(logits: logits, history: history)
                let degraded = options.mode == .collaborative ? ":degraded" : ""
                decided = (token, logProbability(of: token, in: logits), "edge:\(layers.split)\(degraded)")
            }
            guard let (token, logprob, source) = decided else { throw EngineError.emptyInput }
            if step == 0 { result.prefillSeconds = Date().timeIntervalSince(start) }
            step += 1

            if stops.contains(token) {
                result.stopReason = .endOfSequence
                break
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
            if result.tokens.count >= options.maxTokens { break }
            if layers.positions + 1 > capacity {
                result.stopReason = .contextFull
                break
            }
            input = [token]
        }
        let tail = decoder.finish()
        if !tail.isEmpty {
            result.text += tail
            onText(tail)
        }
        result.decodeSeconds = Date().timeIntervalSince(start) - result.prefillSeconds
        if let link { await link.close() }
        result.traffic = totalTraffic()
        result.networkSeconds = max(0, result.traffic.networkSeconds - result.cloudSeconds)
        result.reconnects = reconnects
        link = nil
        return result
    }

    // MARK: - Cloud link management

    private func totalTraffic() -> LinkTraffic {
        var t = finishedTraffic
        if let current = link?.traffic { t += current }
        return t
    }

    /// Connects (or reconnects, resuming the session when the cloud still has it) and replays what
    /// the cloud is missing. Does nothing while backing off after a failure.
    private func ensureLink(log: UploadLog) async {
        guard link == nil, let connector, Date() >= retryAt else { return }
        do {
            let newLink = try await connector.connect()
            var request = OpenRequest(fingerprint: fingerprint, splitLayer: model.layers.upperBound, wire: options.wire,
                                      maxPositions: min(options.maxPositions, model.config.contextLength), resume: session)
            var reply: OpenReply
            do {
                reply = try await newLink.open(request)
            } catch let error as CollabError where error.code == .unknownSession {
                request.resume = nil  // the cloud lost the session: start over and replay everything
                reply = try await newLink.open(request)
            }
            if session != nil { reconnects += 1 }
            link = newLink
            session = reply.session
            sent = min(reply.positionsHeld, log.count)
            if sent < reply.positionsHeld { try await newLink.truncate(to: sent) }
            backoff = options.initialBackoffSeconds
            await upload(log: log)
        } catch {
            fail()
        }
    }

    private func upload(log: UploadLog) async {
        if link == nil { await ensureLink(log: log) }
        guard let link, sent < log.count else { return }
        do {
            var position = sent
            while position < log.count {
                let end = min(log.count, position + 1024)
                try await link.append(firstPosition: position, rows: end - position, payload: log.payload(position..<end))
                position = end
            }
            sent = log.count
        } catch {
            fail()
        }
    }

    private func infer(position: Int, history: [Int], log: UploadLog) async -> TokenReply? {
        guard let link else { return nil }
        do {
            let tail = Array(history.suffix(max(0, options.sampling.repeatLastN)))
            return try await link.infer(position: position, sampling: options.sampling, topLogprobs: 0, history: tail)
        } catch {
            fail()
            return nil
        }
    }

    /// Drops the link and schedules a reconnect with exponential backoff.
    private func fail() {
        if let link { finishedTraffic += link.traffic }
        link = nil
        retryAt = Date().addingTimeInterval(backoff)
        backoff = min(backoff * 2, options.maxBackoffSeconds)
    }
}
