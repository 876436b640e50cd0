import CollabProtocol
import Foundation
import GRPCCore
import LLM

/// The `cloud` baseline: the whole model runs in the cloud and streams tokens back. One request
/// at a time (the model is not shared with the split engine).
public final class FullModelServer: @unchecked Sendable {
    let model: LlamaModel
    private let lock = NSLock()
    private var rows = 0
    public let maxTokens = 4096

    /// Positions computed through the whole model so far (the benchmarks' cloud-work accounting).
    public var rowsComputed: Int { lock.withLock { rows } }

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
        // Each step runs under the lock (one forward pass at a time on the shared model, each request
        // with its own cache); tokens are written between steps, so they stream as they are made.
        let cache = model.makeCache(capacity: prompt.count + limit + 1)
        var sampler = Sampler(parameters: sampling)
        var history = prompt
        let prefillStart = Date()
        var logits: [Float] = try lock.withLock {
            var hidden = try model.embed(prompt)
            try model.forward(&hidden, cache: cache)
            rows += prompt.count
            return try model.logits(hidden, rows: [hidden.rows - 1])
        }
        let prefillSeconds = Date().timeIntervalSince(prefillStart)
        for step in 0..<limit {
            let start = step == 0 ? Date().addingTimeInterval(-prefillSeconds) : Date()
            let token = sampler.sample(logits: logits, history: history)
            var event = Collm_V1_CloudGenerateEvent.with {
                $0.token.position = UInt64(history.count - 1)
                $0.token.tokenID = UInt32(token)
                $0.token.logprob = logProbability(of: token, in: logits)
            }
            history.append(token)
            event.done = stops.contains(token) || step == limit - 1
            if !event.done {
                logits = try lock.withLock {
                    var h = try model.embed([token])
                    try model.forward(&h, cache: cache)
                    rows += 1
                    return try model.logits(h)
                }
            }
            event.token.stats.cloudSeconds = Date().timeIntervalSince(start)
            try await response.write(event)
            if event.done { break }
        }
    }
}
