import CollabProtocol
import Foundation
import GRPCCore
import LLM

/// The `cloud` baseline: the whole model runs in the cloud and streams tokens back. One request
/// at a time (the model is not shared with the split engine).
public final class FullModelServer: @unchecked Sendable {
    let model: LlamaModel
    private let lock = NSLock()
    public let maxTokens = 4096

    public init(model: LlamaModel) {
        precondition(model.hasEmbeddings && model.hasHead)
        self.model = model
    }

    func generate(_ request: Collm_V1_CloudGenerateRequest, response: RPCWriter<Collm_V1_CloudGenerateEvent>) async throws {
        let prompt = request.promptTokens.map(Int.init)
        let limit = min(Int(request.maxTokens), maxTokens)
        guard !prompt.isEmpty, prompt.count + limit <= model.config.contextLength else {
            throw RPCError(code: .invalidArgument, message: "prompt of \(prompt.count) tokens plus \(limit) new ones does not fit the context")
        }
        let sampling = SamplingParameters(request.sampling)
        do { try sampling.validate() } catch { throw RPCError(code: .invalidArgument, message: "\(error)") }
        let stops = Set(request.stopTokens.map(Int.init))
        let events: [Collm_V1_CloudGenerateEvent] = try lock.withLock {
            var events: [Collm_V1_CloudGenerateEvent] = []
            let cache = model.makeCache(capacity: prompt.count + limit + 1)
            var sampler = Sampler(parameters: sampling)
            var hidden = try model.embed(prompt)
            try model.forward(&hidden, cache: cache)
            var logits = try model.logits(hidden, rows: [hidden.rows - 1])
            var history = prompt
            for step in 0..<limit {
                let start = Date()
                let token = sampler.sample(logits: logits, history: history)
                let reply = Collm_V1_TokenResult.with {
                    $0.position = UInt64(history.count - 1)
                    $0.tokenID = UInt32(token)
                    $0.logprob = logProbability(of: token, in: logits)
                }
                history.append(token)
                let done = stops.contains(token) || step == limit - 1
                if !done {
                    var h = try model.embed([token])
                    try model.forward(&h, cache: cache)
                    logits = try model.logits(h)
                }
                var event = Collm_V1_CloudGenerateEvent.with { $0.token = reply; $0.done = done }
                event.token.stats.cloudSeconds = Date().timeIntervalSince(start)
                events.append(event)
                if done { break }
            }
            return events
        }
        // Tokens are computed under the lock, then streamed (the lock is not held across awaits).
        for event in events { try await response.write(event) }
    }
}
