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

extension ContextManager {
    /// Serves several INFER jobs with one forward pass over all their pending rows (one segment per
    /// session). A job that cannot be served gets its own error; the others still run. Jobs for a
    /// session already in the batch are left for the next batch (returned as nil).
    public func inferBatch(_ jobs: [InferJob], now: Date = Date()) -> [Result<TokenReply, CollabError>?] {
        var results = [Result<TokenReply, CollabError>?](repeating: nil, count: jobs.count)
        var planned: [(index: Int, session: CloudSession, rows: Int, scored: Int)] = []
        var seen = Set<SessionID>()
        var totalRows = 0
        for (index, job) in jobs.enumerated() {
            do {
                let session = try lookup(job.session, owner: job.owner)
                if seen.contains(job.session) { continue }
                session.lastUse = now
                let computed = session.cache.count
                guard job.position >= computed, job.draft.count <= limits.maxDraftTokens,
                      job.lastPosition < session.positionsHeld else {
                    throw CollabError(.outOfOrder, "INFER at position \(job.position) with \(job.draft.count) draft tokens but the session has \(computed) computed and \(session.pending.rows) pending positions (draft limit \(limits.maxDraftTokens))")
                }
                let vocab = model.config.vocabularySize
                guard job.draft.allSatisfy({ $0 >= 0 && $0 < vocab }) else {
                    throw CollabError(.invalidArgument, "draft token outside the vocabulary")
                }
                guard job.topLogprobs >= 0, job.topLogprobs <= 20 else {
                    throw CollabError(.invalidArgument, "top_logprobs must be 0...20")
                }
                try job.sampling.validate()
                let rows = job.lastPosition - computed + 1
                if totalRows > 0, totalRows + rows > limits.maxBatchRows { continue }
                seen.insert(job.session)
                planned.append((index, session, rows, job.draft.count + 1))
                totalRows += rows
            } catch let error as CollabError {
                results[index] = .failure(error)
            } catch {
                results[index] = .failure(CollabError(.invalidArgument, "\(error)"))
            }
        }
        if planned.isEmpty { return results }

        let start = Date()
        var hidden = HiddenStates(rows: 0, width: model.config.hiddenSize)
        var segments: [BatchSegment] = []
        var lastRows: [Int] = []
        for item in planned {
            hidden.append(item.session.pending.rows(0..<item.rows))
            segments.append(BatchSegment(cache: item.session.cache, position: item.session.cache.count, count: item.rows))
            lastRows += (hidden.rows - item.scored)..<hidden.rows
        }
        let logits: [Float]
        do {
            try model.forward(&hidden, batch: segments)
            logits = try model.logits(hidden, rows: lastRows)
        } catch {
            for item in planned { results[item.index] = .failure(CollabError(.internal, "\(error)")) }
            return results
        }
        let seconds = Date().timeIntervalSince(start)
        noteBatch(sessions: planned.count, rows: totalRows)
        let vocab = model.config.vocabularySize
        var scoredRow = 0
        for item in planned {
            let job = jobs[item.index]
            let session = item.session
            session.pending = session.pending.rows(item.rows..<session.pending.rows)
            session.rowsComputed += item.rows
            session.infers += 1
            session.busySeconds += seconds * Double(item.rows) / Double(totalRows)
            if session.sampler == nil || session.sampler?.parameters != job.sampling {
                session.sampler = Sampler(parameters: job.sampling)
            }
            // The cloud's token after each draft prefix, until it disagrees with the draft.
            var history = job.history
            var accepted = 0
            var row: [Float] = []
            var token = 0
            for k in 0..<item.scored {
                row = Array(logits[(scoredRow + k) * vocab..<(scoredRow + k + 1) * vocab])
                token = session.sampler!.sample(logits: row, history: history)
                guard k < job.draft.count, token == job.draft[k] else { break }
                accepted += 1
                history.append(token)
            }
            scoredRow += item.scored
            if accepted < job.draft.count {
                // Rejected draft positions hold states the edge will recompute: drop them now.
                session.cache.truncate(to: job.position + accepted + 1)
                session.pending = HiddenStates(rows: 0, width: session.codec.width)
            }
            let top = job.topLogprobs > 0 ? topCandidates(row, k: job.topLogprobs).map { TokenCandidate(token: $0.id, logprob: $0.logprob) } : []
            var reply = TokenReply(
                position: job.position + accepted, token: token, logprob: logProbability(of: token, in: row), top: top,
                rowsComputed: item.rows, batchRows: totalRows, cloudSeconds: seconds)
            reply.accepted = accepted
            results[item.index] = .success(reply)
        }
        return results
    }
}
