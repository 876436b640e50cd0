import CollabCore
import Foundation
import LLM

/// The cloud context manager (docs/ARCHITECTURE.md, "Cloud"): sessions keyed by random ids and bound
/// to their owner, uploaded states kept once, catch-up of pending states in batched forward passes,
/// memory admission, LRU eviction and idle expiry. It holds one model: the layers above the split
/// (collab, spec, naive) or the whole model, whose layers [s, L) then also serve split sessions and
/// whose lower layers serve cloud-only generations, so one copy of the weights serves every mode.
/// Not thread-safe: `CloudEngine` calls it from its one engine thread.
public final class ContextManager {
    public let model: LlamaModel
    public let fingerprint: [UInt8]
    public let limits: CloudLimits
    /// The edge's split s: split sessions' states enter here.
    public let splitLayer: Int
    private var sessions: [SessionID: CloudSession] = [:]
    /// Sessions recently evicted or expired, with their owners (the latest 4096): resumes get RESYNC.
    private var evicted: [SessionID: String] = [:]
    private var evictedOrder: [SessionID] = []
    private(set) public var reservedBytes = 0
    // Counters (cloud-wide).
    /// Forward passes, and the split sessions' rows they computed (collab, spec and naive work).
    public private(set) var batches = 0
    public private(set) var batchedRows = 0
    /// Works served (split sessions and cloud-only generations), summed over passes (divided by `batches`:
    /// the mean batch size).
    public private(set) var batchedSessions = 0
    public private(set) var largestBatchSessions = 0
    public private(set) var evictions = 0
    /// Rows run through the whole model for cloud-only generations (the baseline's cloud work).
    public private(set) var fullModelRows = 0
    /// Cloud-only generations running now.
    public internal(set) var activeGenerations = 0

    public var sessionCount: Int { sessions.count }
    /// The layers split sessions run here: [s, L).
    public var cloudLayers: Range<Int> { splitLayer..<model.layers.upperBound }
    /// True when this cloud holds the whole model and so also serves cloud-only generations.
    public var servesFullModel: Bool { model.hasEmbeddings && model.layers.lowerBound == 0 }

    /// Bytes one position costs a session: KV for the cloud layers plus one pending state row.
    public var bytesPerPosition: Int {
        cloudLayers.count * model.config.kvDim * 4 * 2 + model.config.hiddenSize * 4
    }

    /// `splitLayer` defaults to the model's first layer (a model of layers [s, L) serves split s).
    public init(model: LlamaModel, fingerprint: [UInt8], limits: CloudLimits = CloudLimits(), splitLayer: Int? = nil) {
        precondition(model.hasHead, "the cloud part must own the output head")
        let split = splitLayer ?? model.layers.lowerBound
        precondition(model.layers.contains(split), "the split must be one of the model's layers")
        self.model = model
        self.fingerprint = fingerprint
        self.limits = limits
        self.splitLayer = split
    }

    public func open(_ request: OpenRequest, owner: String, now: Date = Date()) throws -> OpenReply {
        guard request.protocolVersion == ProtocolVersion.current else {
            throw CollabError(.invalidArgument, "protocol version \(request.protocolVersion) is not supported (this cloud speaks \(ProtocolVersion.current))")
        }
        guard request.fingerprint == fingerprint else {
            throw CollabError(.fingerprintMismatch, "the edge's model differs from the cloud's model")
        }
        guard request.splitLayer == splitLayer else {
            throw CollabError(.fingerprintMismatch, "the edge splits at layer \(request.splitLayer), this cloud serves layers \(model.layers)")
        }
        if let resume = request.resume {
            if evicted[resume] == owner {
                // The documented answer for a session this cloud let go: RESYNC (open afresh, replay the log).
                throw CollabError(.resync, "session \(resume) was evicted or expired; open a new session and replay")
            }
            let session = try lookup(resume, owner: owner)
            guard session.codec.format == request.wire else {
                throw CollabError(.invalidArgument, "a resumed session keeps its wire format \(session.codec.format.rawValue)")
            }
            session.lastUse = now
            return OpenReply(session: session.id, maxPositions: session.maxPositions,
                             maxRowsPerAppend: limits.maxRowsPerAppend, positionsHeld: session.positionsHeld)
        }
        let maxPositions = min(request.maxPositions, limits.maxPositionsPerSession, model.config.contextLength)
        guard request.maxPositions > 0 else {
            throw CollabError(.invalidArgument, "max_positions must be positive")
        }
        let bytes = maxPositions * bytesPerPosition
        try admit(bytes, owner: owner, now: now)
        let codec: HiddenStateCodec
        do {
            codec = try HiddenStateCodec(format: request.wire, width: model.config.hiddenSize, maxRows: limits.maxRowsPerAppend)
        } catch {
            throw CollabError(.invalidArgument, "\(error)")
        }
        let session = CloudSession(id: SessionID.random(), owner: owner, codec: codec,
                                   cache: model.makeCache(capacity: maxPositions, only: cloudLayers), maxPositions: maxPositions,
                                   reservedBytes: bytes)
        session.lastUse = now
        sessions[session.id] = session
        reservedBytes += bytes
        return OpenReply(session: session.id, maxPositions: maxPositions,
                         maxRowsPerAppend: limits.maxRowsPerAppend, positionsHeld: 0)
    }

    /// Stores uploaded boundary states for positions `firstPosition ..< firstPosition + rows`.
    /// Uploads must be contiguous; a repeated range (a replay) is accepted if it ends at or before
    /// what is held. Returns the positions held.
    @discardableResult
    public func append(_ id: SessionID, owner: String, firstPosition: Int, rows: Int, payload: [UInt8],
                       now: Date = Date()) throws -> Int {
        let session = try lookup(id, owner: owner)
        session.lastUse = now
        guard rows >= 0, rows <= limits.maxRowsPerAppend else {
            throw CollabError(.invalidArgument, "append of \(rows) rows (limit \(limits.maxRowsPerAppend))")
        }
        guard firstPosition == session.positionsHeld else {
            if firstPosition >= 0, firstPosition <= session.positionsHeld - rows { return session.positionsHeld }
            throw CollabError(.outOfOrder, "append starts at position \(firstPosition), the session holds \(session.positionsHeld)")
        }
        guard firstPosition + rows <= session.maxPositions else {
            throw CollabError(.resourceExhausted, "session limit of \(session.maxPositions) positions reached")
        }
        let states: HiddenStates
        do {
            states = try session.codec.decode(payload, rows: rows)
        } catch {
            throw CollabError(.invalidArgument, "\(error)")
        }
        try checkMagnitude(states)
        session.pending.append(states)
        session.bytesReceived += payload.count
        return session.positionsHeld
    }

    /// Forgets positions at and after `position` (computed or pending).
    public func truncate(_ id: SessionID, owner: String, to position: Int) throws -> Int {
        let session = try lookup(id, owner: owner)
        guard position >= 0 else { throw CollabError(.invalidArgument, "negative position") }
        if position < session.cache.count {
            session.cache.truncate(to: position)
            session.pending = HiddenStates(rows: 0, width: session.codec.width)
        } else {
            let keep = min(session.pending.rows, position - session.cache.count)
            session.pending = session.pending.rows(0..<keep)
        }
        return session.positionsHeld
    }

    public func close(_ id: SessionID, owner: String) throws {
        let session = try lookup(id, owner: owner)
        remove(session)
        MemoryRelease.returnFreedPages()
    }

    /// Closes sessions idle longer than the timeout; returns how many.
    @discardableResult
    public func expireIdle(now: Date = Date()) -> Int {
        let stale = sessions.values.filter { now.timeIntervalSince($0.lastUse) > limits.idleTimeoutSeconds }
        stale.forEach(forget)
        if !stale.isEmpty { MemoryRelease.returnFreedPages() }
        return stale.count
    }

    /// Refuses states that are NaN, infinite or beyond the configured magnitude.
    func checkMagnitude(_ states: HiddenStates) throws {
        let outside = states.countOutside(bound: limits.maxStateMagnitude)
        guard outside == 0 else {
            throw CollabError(.invalidArgument, "\(outside) uploaded state values are NaN, infinite or beyond ±\(limits.maxStateMagnitude)")
        }
    }

    /// Checks that token ids (history, drafts, prompts) are inside the vocabulary.
    func checkTokens<S: Sequence<Int>>(_ tokens: S, _ what: String) throws {
        let vocabulary = model.config.vocabularySize
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw CollabError(.invalidArgument, "\(what) holds token id \(bad), outside the vocabulary of \(vocabulary)")
        }
    }

    /// Accounting of one session (for tests and metrics).
    public func usage(_ id: SessionID) -> (computed: Int, pending: Int, rowsComputed: Int, busySeconds: Double, bytesReceived: Int)? {
        sessions[id].map { ($0.cache.count, $0.pending.rows, $0.rowsComputed, $0.busySeconds, $0.bytesReceived) }
    }

    func lookup(_ id: SessionID, owner: String) throws -> CloudSession {
        // Another owner's session is reported exactly like a missing one: ids leak nothing.
        guard let session = sessions[id], session.owner == owner else {
            throw CollabError(.unknownSession, "session \(id) is not known here (expired, evicted or never opened); reopen and replay")
        }
        return session
    }

    /// Admits a cloud-only generation of `positions` positions: reserves its KV memory (evicting idle
    /// sessions if needed) and makes its cache. `release(generationBytes:)` gives the memory back.
    func admitGeneration(positions: Int, now: Date = Date()) throws -> (cache: KVCache, bytes: Int) {
        guard servesFullModel else {
            throw CollabError(.unavailable, "this cloud was started without the full model (--no-full-model)")
        }
        let bytes = positions * model.layers.count * model.config.kvDim * 4 * 2
        try admit(bytes, owner: nil, now: now)
        reservedBytes += bytes
        activeGenerations += 1
        return (model.makeCache(capacity: positions), bytes)
    }

    func release(generationBytes bytes: Int) {
        reservedBytes -= bytes
        activeGenerations -= 1
    }

    func noteFullModelRows(_ rows: Int) { fullModelRows += rows }

    /// Makes room for `bytes` of a new session of `owner` (nil: a cloud-only generation). Only the
    /// owner's own least recently used sessions are evicted to fit its quota or the budget; another
    /// principal's live sessions never are, so when they fill the budget the newcomer is refused.
    private func admit(_ bytes: Int, owner: String?, now: Date) throws {
        guard bytes <= limits.memoryBudgetBytes else {
            throw CollabError(.resourceExhausted, "a session of this length needs \(bytes >> 20) MiB, over the cloud's budget of \(limits.memoryBudgetBytes >> 20) MiB")
        }
        expireIdle(now: now)
        guard let owner else {
            guard reservedBytes + bytes <= limits.memoryBudgetBytes else {
                throw CollabError(.resourceExhausted, "the cloud's memory budget (\(limits.memoryBudgetBytes >> 20) MiB) is full; retry later")
            }
            return
        }
        let quota = limits.quota(of: owner)
        if let maxBytes = quota.maxBytes, bytes > maxBytes {
            throw CollabError(.resourceExhausted, "a session of this length needs \(bytes >> 20) MiB, over your quota of \(maxBytes >> 20) MiB")
        }
        let own = sessions.values.filter { $0.owner == owner }.sorted { $0.lastUse < $1.lastUse }
        // The fewest of its own oldest sessions whose room lets the new one in, found before evicting
        // any, so that a refusal costs the principal nothing.
        let ownBytes = own.reduce(0) { $0 + $1.reservedBytes }
        var freed = 0
        var victims = 0
        func fits() -> Bool {
            own.count - victims < quota.maxSessions && ownBytes - freed + bytes <= (quota.maxBytes ?? .max)
                && reservedBytes - freed + bytes <= limits.memoryBudgetBytes
        }
        while !fits(), victims < own.count {
            freed += own[victims].reservedBytes
            victims += 1
        }
        guard fits() else {
            throw CollabError(.resourceExhausted, "the cloud's memory budget (\(limits.memoryBudgetBytes >> 20) MiB) is held by other principals' live sessions; retry later")
        }
        own.prefix(victims).forEach(forget)
        evictions += victims
    }

    /// Removes a session the cloud lets go of (eviction or expiry); a resume of it is answered RESYNC.
    private func forget(_ session: CloudSession) {
        remove(session)
        evicted[session.id] = session.owner
        evictedOrder.append(session.id)
        if evictedOrder.count > 4096 { evicted[evictedOrder.removeFirst()] = nil }
    }

    private func remove(_ session: CloudSession) {
        if sessions.removeValue(forKey: session.id) != nil { reservedBytes -= session.reservedBytes }
    }

    func noteBatch(sessions count: Int, rows: Int) {
        batches += 1
        batchedRows += rows
        batchedSessions += count
        largestBatchSessions = max(largestBatchSessions, count)
    }
}
