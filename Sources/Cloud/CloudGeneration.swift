import CollabCore
import Foundation
import LLM

/// A cloud-only generation (`--mode cloud`, the baseline): the whole model runs in the cloud and
/// tokens stream back as they are made.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var stopTokens: Set<Int>

    public init(prompt: [Int], maxTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = []) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
    }
}

/// One streamed token of a cloud-only generation.
public struct GeneratedToken: Sendable, Equatable {
    /// Position of the input row whose logits chose the token.
    public var position: Int
    public var token: Int
    public var logprob: Float
    /// True for the last token (a stop token or the limit).
    public var done: Bool
    /// Seconds since the previous token (since the request for the first one).
    public var cloudSeconds: Double
}

/// A cloud-only generation in the engine: the prompt in chunks, then one row per decode step, in
/// the same passes as the split sessions' work (layers [0, s) for its rows alone, then layers
/// [s, L) with everyone's rows).
final class GenerationWork: CloudWork {
    let request: GenerationRequest
    private let cache: KVCache
    private let emit: (GeneratedToken) -> Void
    private let finish: (CollabError?) -> Void
    private let cancelled: CancellationFlag
    private var feed: [Int]
    private var history: [Int]
    private var sampler: Sampler
    private var generated = 0
    private var lastEmit = Date()
    var arrival = 0
    var lastServedPass = -1
    let entersAtEmbeddings = true
    var isCancelled: Bool { cancelled.isSet }

    init(request: GenerationRequest, cache: KVCache, cancelled: CancellationFlag,
         emit: @escaping (GeneratedToken) -> Void, finish: @escaping (CollabError?) -> Void) {
        self.request = request
        self.cache = cache
        self.cancelled = cancelled
        self.emit = emit
        self.finish = finish
        feed = request.prompt
        history = request.prompt
        sampler = Sampler(parameters: request.sampling)
    }

    func prepare(in manager: ContextManager) throws -> WorkDemand {
        WorkDemand(cache: cache, position: cache.count, remaining: feed.count, scored: 1)
    }

    func input(rows: Int, in manager: ContextManager) throws -> PassInput {
        .tokens(Array(feed.prefix(rows)))
    }

    func advance(rows: Int, final: Bool, logits: ArraySlice<Float>, pass: PassReport, in manager: ContextManager) -> Bool {
        feed.removeFirst(rows)
        manager.noteFullModelRows(rows)
        guard final else { return false }
        let row = Array(logits)
        let token = sampler.sample(logits: row, history: history)
        history.append(token)
        generated += 1
        let done = request.stopTokens.contains(token) || generated >= request.maxTokens
        let now = Date()
        emit(GeneratedToken(position: cache.count - 1, token: token, logprob: logProbability(of: token, in: row),
                            done: done, cloudSeconds: now.timeIntervalSince(lastEmit)))
        lastEmit = now
        if done {
            finish(nil)
            return true
        }
        feed = [token]
        return false
    }

    func fail(_ error: CollabError) { finish(error) }
}

/// A flag set from any thread (a stream's termination handler) and read by the engine thread.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

extension ContextManager {
    /// Checks a cloud-only request; returns the positions its cache needs.
    func checkGeneration(_ request: GenerationRequest) throws -> Int {
        guard !request.prompt.isEmpty, request.maxTokens > 0 else {
            throw CollabError(.invalidArgument, "a generation needs a prompt and at least one new token")
        }
        try checkTokens(request.prompt, "the prompt")
        try checkTokens(request.stopTokens, "the stop tokens")
        let positions = request.prompt.count + request.maxTokens
        guard positions <= min(model.config.contextLength, limits.maxPositionsPerSession) else {
            throw CollabError(.invalidArgument, "prompt of \(request.prompt.count) tokens plus \(request.maxTokens) new ones does not fit the context (\(min(model.config.contextLength, limits.maxPositionsPerSession)) positions)")
        }
        do { try request.sampling.validate() } catch { throw CollabError(.invalidArgument, "\(error)") }
        return positions
    }
}
