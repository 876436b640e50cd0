import CollabCore
import Foundation
import LLM

/// The paper's naive split baseline: the edge re-sends every boundary state of the context and the
/// cloud recomputes its layers over all of them on an empty cache, keeping nothing. Its rows go
/// through the passes in chunks like any catch-up, so a long step never stalls other sessions.
final class NaiveWork: CloudWork {
    private let states: HiddenStates
    private let sampling: SamplingParameters
    private let reply: (Result<TokenReply, CollabError>) -> Void
    private var cache: KVCache?
    private var done = 0
    private let started = Date()
    private let cancelled: CancellationFlag
    var arrival = 0
    var lastServedPass = -1
    /// Set when its caller gave up: the rest of the step is dropped.
    var isCancelled: Bool { cancelled.isSet }

    init(states: HiddenStates, sampling: SamplingParameters, cancelled: CancellationFlag = CancellationFlag(),
         reply: @escaping (Result<TokenReply, CollabError>) -> Void) {
        self.states = states
        self.sampling = sampling
        self.cancelled = cancelled
        self.reply = reply
    }

    func prepare(in manager: ContextManager) throws -> WorkDemand {
        let cache = self.cache ?? manager.model.makeCache(capacity: states.rows, only: manager.cloudLayers)
        self.cache = cache
        return WorkDemand(cache: cache, position: done, remaining: states.rows - done, scored: 1)
    }

    func input(rows: Int, in manager: ContextManager) throws -> PassInput {
        .states(states.rows(done..<(done + rows)))
    }

    func advance(rows: Int, final: Bool, logits: ArraySlice<Float>, pass: PassReport, in manager: ContextManager) -> Bool {
        done += rows
        guard final else { return false }
        let row = Array(logits)
        var sampler = Sampler(parameters: sampling)
        let token = sampler.sample(logits: row, history: [])
        reply(.success(TokenReply(position: states.rows - 1, token: token, logprob: logProbability(of: token, in: row),
                                  rowsComputed: states.rows, batchRows: pass.rows,
                                  cloudSeconds: Date().timeIntervalSince(started))))
        cache = nil
        return true
    }

    func fail(_ error: CollabError) { reply(.failure(error)) }
}

extension ContextManager {
    /// Checks and decodes a naive step's states.
    func decodeNaiveStep(_ request: NaiveStepRequest) throws -> HiddenStates {
        let (rows, wire, payload) = (request.rows, request.wire, request.payload)
        guard request.fingerprint == fingerprint, request.splitLayer == splitLayer else {
            throw CollabError(.fingerprintMismatch, "the edge's model or split differs from the cloud's")
        }
        guard rows > 0, rows <= min(limits.maxPositionsPerSession, model.config.contextLength) else {
            throw CollabError(.invalidArgument, "naive step of \(rows) rows")
        }
        do { try request.sampling.validate() } catch { throw CollabError(.invalidArgument, "\(error)") }
        let states: HiddenStates
        do {
            states = try HiddenStateCodec(format: wire, width: model.config.hiddenSize, maxRows: rows).decode(payload, rows: rows)
        } catch {
            throw CollabError(.invalidArgument, "\(error)")
        }
        try checkMagnitude(states)
        return states
    }
}
