import CollabCore
import Foundation
import LLM

/// INFER(position): compute the session's pending states up to `position` and return the token
/// that follows it.
public struct InferJob: Sendable {
    public var session: SessionID
    public var owner: String
    public var position: Int
    public var sampling: SamplingParameters
    public var topLogprobs: Int
    /// Recent tokens, for repetition penalties (the cloud never sees the prompt text otherwise).
    public var history: [Int]

    public init(session: SessionID, owner: String, position: Int, sampling: SamplingParameters = .greedy,
                topLogprobs: Int = 0, history: [Int] = []) {
        self.session = session
        self.owner = owner
        self.position = position
        self.sampling = sampling
        self.topLogprobs = topLogprobs
        self.history = history
    }
}

extension ContextManager {
    /// Serves several INFER jobs with one forward pass over all their pending rows (one segment per
    /// session). A job that cannot be served gets its own error; the others still run. Jobs for a
    /// session already in the batch are left for the next batch (returned as nil).
    public func inferBatch(_ jobs: [InferJob], now: Date = Date()) -> [Result<TokenReply, CollabError>?] {
        var results = [Result<TokenReply, CollabError>?](repeating: nil, count: jobs.count)
        var planned: [(index: Int, session: CloudSession, rows: Int)] = []
        var seen = Set<SessionID>()
        var totalRows = 0
        for (index, job) in jobs.enumerated() {
            do {
                let session = try lookup(job.session, owner: job.owner)
                if seen.contains(job.session) { continue }
                session.lastUse = now
                let computed = session.cache.count
                guard job.position >= computed, job.position < session.positionsHeld else {
                    throw CollabError(.outOfOrder, "INFER at position \(job.position) but the session has \(computed) computed and \(session.pending.rows) pending positions")
                }
                guard job.topLogprobs >= 0, job.topLogprobs <= 20 else {
                    throw CollabError(.invalidArgument, "top_logprobs must be 0...20")
                }
                try job.sampling.validate()
                let rows = job.position - computed + 1
                if totalRows > 0, totalRows + rows > limits.maxBatchRows { continue }
                seen.insert(job.session)
                planned.append((index, session, rows))
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
            lastRows.append(hidden.rows - 1)
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
        for (k, item) in planned.enumerated() {
            let job = jobs[item.index]
            let session = item.session
            session.pending = session.pending.rows(item.rows..<session.pending.rows)
            session.rowsComputed += item.rows
            session.infers += 1
            session.busySeconds += seconds * Double(item.rows) / Double(totalRows)
            let row = Array(logits[k * vocab..<(k + 1) * vocab])
            if session.sampler == nil || session.sampler?.parameters != job.sampling {
                session.sampler = Sampler(parameters: job.sampling)
            }
            let token = session.sampler!.sample(logits: row, history: job.history)
            let top = job.topLogprobs > 0 ? topCandidates(row, k: job.topLogprobs).map { TokenCandidate(token: $0.id, logprob: $0.logprob) } : []
            results[item.index] = .success(TokenReply(
                position: job.position, token: token, logprob: logProbability(of: token, in: row), top: top,
                rowsComputed: item.rows, batchRows: totalRows, cloudSeconds: seconds))
        }
        return results
    }
}
