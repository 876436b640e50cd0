import CollabCore
import Foundation
import LLM

/// INFER(position): compute the session's pending states up to `position` and return the token
/// that follows it. With a draft (VERIFY, speculative mode) the draft tokens are the edge's guesses
/// for positions position+1...; their states were uploaded, so the cloud checks them all in the same
/// pass, keeps the longest agreeing prefix and answers its own token after it.
public struct InferJob: Sendable {
    public var session: SessionID
    public var owner: String
    public var position: Int
    public var sampling: SamplingParameters
    public var topLogprobs: Int
    /// Recent tokens, for repetition penalties (the cloud never sees the prompt text otherwise).
    public var history: [Int]
    public var draft: [Int]

    public init(session: SessionID, owner: String, position: Int, sampling: SamplingParameters = .greedy,
                topLogprobs: Int = 0, history: [Int] = [], draft: [Int] = []) {
        self.session = session
        self.owner = owner
        self.position = position
        self.sampling = sampling
        self.topLogprobs = topLogprobs
        self.history = history
        self.draft = draft
    }

    /// The last position whose state the job needs.
    var lastPosition: Int { position + draft.count }
}

/// An INFER or VERIFY in the engine: its session's pending rows, possibly over several passes
/// (a long catch-up is chunked), then the answer from the scored rows.
final class InferWork: CloudWork {
    let job: InferJob
    private let now: Date?
    private let reply: (Result<TokenReply, CollabError>) -> Void
    private var session: CloudSession?
    private var rowsDone = 0
    private let cancelled: CancellationFlag
    var arrival = 0
    var lastServedPass = -1
    /// Set when its caller stopped waiting (its stream ended): the rest of a long catch-up is dropped
    /// (the rows computed so far stay in the session, which is still exact).
    var isCancelled: Bool { cancelled.isSet }

    /// `now` pins the session's last-use time (tests); nil uses the clock.
    init(job: InferJob, now: Date? = nil, cancelled: CancellationFlag = CancellationFlag(),
         reply: @escaping (Result<TokenReply, CollabError>) -> Void) {
        self.job = job
        self.now = now
        self.cancelled = cancelled
        self.reply = reply
    }

    func prepare(in manager: ContextManager) throws -> WorkDemand {
        let session = try manager.lookup(job.session, owner: job.owner)
        if self.session == nil { try manager.check(job, in: session) }
        self.session = session
        session.lastUse = now ?? Date()
        let computed = session.cache.count
        return WorkDemand(cache: session.cache, position: computed, remaining: job.lastPosition - computed + 1,
                          scored: job.draft.count + 1)
    }

    func input(rows: Int, in manager: ContextManager) throws -> PassInput {
        .states(session!.pending.rows(0..<rows))
    }

    func advance(rows: Int, final: Bool, logits: ArraySlice<Float>, pass: PassReport, in manager: ContextManager) -> Bool {
        let session = session!
        session.pending = session.pending.rows(rows..<session.pending.rows)
        session.rowsComputed += rows
        session.busySeconds += pass.seconds * Double(rows) / Double(max(1, pass.rows))
        rowsDone += rows
        guard final else { return false }
        reply(.success(manager.answer(job, in: session, logits: logits, rowsComputed: rowsDone, pass: pass)))
        return true
    }

    func fail(_ error: CollabError) { reply(.failure(error)) }
}

extension ContextManager {
    /// Rejects an INFER that does not fit its session's state or the protocol's limits.
    func check(_ job: InferJob, in session: CloudSession) throws {
        let computed = session.cache.count
        guard job.position >= computed, job.draft.count <= limits.maxDraftTokens,
              job.lastPosition < session.positionsHeld else {
            throw CollabError(.outOfOrder, "INFER at position \(job.position) with \(job.draft.count) draft tokens but the session has \(computed) computed and \(session.pending.rows) pending positions (draft limit \(limits.maxDraftTokens))")
        }
        try checkTokens(job.draft, "the draft")
        try checkTokens(job.history, "the history tail")
        guard job.topLogprobs >= 0, job.topLogprobs <= 20 else {
            throw CollabError(.invalidArgument, "top_logprobs must be 0...20")
        }
        do { try job.sampling.validate() } catch { throw CollabError(.invalidArgument, "\(error)") }
    }

    /// The cloud's token after each draft prefix, until it disagrees with the draft; rejected draft
    /// positions are dropped from the session (the edge recomputes them).
    func answer(_ job: InferJob, in session: CloudSession, logits: ArraySlice<Float>, rowsComputed: Int,
                pass: PassReport) -> TokenReply {
        session.infers += 1
        if session.sampler == nil || session.sampler?.parameters != job.sampling {
            session.sampler = Sampler(parameters: job.sampling)
        }
        let vocab = model.config.vocabularySize
        let base = logits.startIndex
        var history = job.history
        var accepted = 0
        var row: [Float] = []
        var token = 0
        for k in 0...job.draft.count {
            row = Array(logits[(base + k * vocab)..<(base + (k + 1) * vocab)])
            token = session.sampler!.sample(logits: row, history: history)
            guard k < job.draft.count, token == job.draft[k] else { break }
            accepted += 1
            history.append(token)
        }
        if accepted < job.draft.count {
            session.cache.truncate(to: job.position + accepted + 1)
            session.pending = HiddenStates(rows: 0, width: session.codec.width)
        }
        let top = job.topLogprobs > 0
            ? topCandidates(row, k: job.topLogprobs).map { TokenCandidate(token: $0.id, logprob: $0.logprob) } : []
        var reply = TokenReply(
            position: job.position + accepted, token: token, logprob: logProbability(of: token, in: row), top: top,
            rowsComputed: rowsComputed, batchRows: pass.rows, cloudSeconds: pass.seconds)
        reply.accepted = accepted
        return reply
    }

    /// Serves several INFER jobs with one forward pass over all their pending rows, unchunked (the
    /// synchronous form of what the engine does). A job that cannot be served gets its own error;
    /// the others still run. Jobs for a session already in the pass, or past the row budget, are
    /// left for a later pass (nil).
    public func inferBatch(_ jobs: [InferJob], now: Date = Date()) -> [Result<TokenReply, CollabError>?] {
        var results = [Result<TokenReply, CollabError>?](repeating: nil, count: jobs.count)
        var items: [PassItem] = []
        var caches = Set<ObjectIdentifier>()
        var total = 0
        for (index, job) in jobs.enumerated() {
            let work = InferWork(job: job, now: now) { results[index] = $0 }
            do {
                let demand = try work.prepare(in: self)
                if caches.contains(ObjectIdentifier(demand.cache)) { continue }
                if total > 0, total + demand.remaining > limits.maxBatchRows { continue }
                caches.insert(ObjectIdentifier(demand.cache))
                items.append(PassItem(work: work, demand: demand, rows: demand.remaining, final: true))
                total += demand.remaining
            } catch {
                work.fail(CollabError(wrapping: error))
            }
        }
        runPass(items)
        return results
    }
}
