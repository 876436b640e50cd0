import CollabCore
import Foundation
import LLM

extension ContextManager {
    /// The paper's naive split baseline: the edge re-sends every boundary state of the context and
    /// the cloud recomputes its layers over all of them from an empty cache, keeping nothing.
    public func naiveStep(fingerprint: [UInt8], splitLayer: Int, wire: WireFormat, rows: Int, payload: [UInt8],
                          sampling: SamplingParameters) throws -> TokenReply {
        guard fingerprint == self.fingerprint, splitLayer == self.splitLayer else {
            throw CollabError(.fingerprintMismatch, "the edge's model or split differs from the cloud's")
        }
        guard rows > 0, rows <= min(limits.maxPositionsPerSession, model.config.contextLength) else {
            throw CollabError(.invalidArgument, "naive step of \(rows) rows")
        }
        do { try sampling.validate() } catch { throw CollabError(.invalidArgument, "\(error)") }
        let start = Date()
        var hidden: HiddenStates
        do {
            hidden = try HiddenStateCodec(format: wire, width: model.config.hiddenSize, maxRows: rows)
                .decode(payload, rows: rows)
        } catch {
            throw CollabError(.invalidArgument, "\(error)")
        }
        let cache = model.makeCache(capacity: rows)
        do {
            try model.forward(&hidden, cache: cache)
            let logits = try model.logits(hidden, rows: [rows - 1])
            var sampler = Sampler(parameters: sampling)
            let token = sampler.sample(logits: logits, history: [])
            noteBatch(sessions: 1, rows: rows)
            return TokenReply(position: rows - 1, token: token, logprob: logProbability(of: token, in: logits),
                              rowsComputed: rows, batchRows: rows, cloudSeconds: Date().timeIntervalSince(start))
        } catch {
            throw CollabError(.internal, "\(error)")
        }
    }
}
