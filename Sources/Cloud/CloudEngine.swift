import CollabCore
import Foundation
import LLM

/// Runs the context manager on one engine thread and serves every mode from one scheduler:
/// requests queue up while a forward pass runs; each pass takes, under a row budget, the pending
/// rows of every waiting work (collab INFER catch-ups, spec VERIFY drafts, naive steps, cloud-only
/// prompts and decode steps), least recently served first, chunking the long ones (`PassPlanner`).
/// Callers use async methods from any task.
public final class CloudEngine: @unchecked Sendable {
    private enum Operation {
        case open(OpenRequest, owner: String, CheckedContinuation<OpenReply, Error>)
        case append(SessionID, owner: String, first: Int, rows: Int, payload: [UInt8], CheckedContinuation<Int, Error>)
        case infer(InferJob, CancellationFlag, CheckedContinuation<TokenReply, Error>)
        case naive(NaiveStepRequest, CancellationFlag, CheckedContinuation<TokenReply, Error>)
        case generate(GenerationRequest, GenerationStream)
        case truncate(SessionID, owner: String, position: Int, CheckedContinuation<Int, Error>)
        case close(SessionID, owner: String, CheckedContinuation<Void, Error>)
        case inspect(@Sendable (ContextManager?) -> Void)
    }

    private let manager: ContextManager
    private let condition = NSCondition()
    private var queue: [Operation] = []
    private var stopped = false
    // Engine thread only.
    private var works: [CloudWork] = []
    private var arrivals = 0
    private var passes = 0
    /// Rows a long work's chunk may have, adapted to the pass-time target.
    private var chunkLimit: Int

    public init(manager: ContextManager) {
        self.manager = manager
        chunkLimit = max(1, manager.limits.maxBatchRows / 2)
        let thread = Thread { [self] in self.loop() }
        thread.name = "collm-cloud-engine"
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// Stops the engine thread after the queued work (pending callers get `unavailable`).
    public func shutdown() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    public func open(_ request: OpenRequest, owner: String) async throws -> OpenReply {
        try await withCheckedThrowingContinuation { submit(.open(request, owner: owner, $0)) }
    }

    public func append(_ id: SessionID, owner: String, firstPosition: Int, rows: Int, payload: [UInt8]) async throws -> Int {
        try await withCheckedThrowingContinuation {
            submit(.append(id, owner: owner, first: firstPosition, rows: rows, payload: payload, $0))
        }
    }

    /// Cancelling the calling task (its stream ended) drops what is left of the work.
    public func infer(_ job: InferJob) async throws -> TokenReply {
        let cancelled = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { submit(.infer(job, cancelled, $0)) }
        } onCancel: { cancelled.set() }
    }

    /// A naive split step: all `rows` boundary states of the context, recomputed from scratch.
    /// Cancelling the calling task (the client gave up) drops what is left of it.
    public func naiveStep(_ request: NaiveStepRequest) async throws -> TokenReply {
        let cancelled = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { submit(.naive(request, cancelled, $0)) }
        } onCancel: { cancelled.set() }
    }

    /// A cloud-only generation: tokens stream as the passes make them. Ending the iteration early
    /// (or cancelling its task) drops the rest of the work.
    public func generate(_ request: GenerationRequest) -> AsyncThrowingStream<GeneratedToken, Error> {
        let (stream, continuation) = AsyncThrowingStream<GeneratedToken, Error>.makeStream()
        let cancelled = CancellationFlag()
        continuation.onTermination = { _ in cancelled.set() }
        submit(.generate(request, GenerationStream(continuation: continuation, cancelled: cancelled)))
        return stream
    }

    public func truncate(_ id: SessionID, owner: String, to position: Int) async throws -> Int {
        try await withCheckedThrowingContinuation { submit(.truncate(id, owner: owner, position: position, $0)) }
    }

    public func close(_ id: SessionID, owner: String) async throws {
        try await withCheckedThrowingContinuation { submit(.close(id, owner: owner, $0)) }
    }

    /// Reads the manager's state on the engine thread (counters, sessions); nil after shutdown.
    public func inspect<T: Sendable>(_ body: @escaping @Sendable (ContextManager) -> T) async -> T? {
        await withCheckedContinuation { continuation in
            submit(.inspect { manager in continuation.resume(returning: manager.map(body)) })
        }
    }

    /// Runs `body` on the engine thread with the manager (for work that is not batched).
    public func perform<T: Sendable>(_ body: @escaping @Sendable (ContextManager) throws -> T) async throws -> T {
        let result: Result<T, Error>? = await inspect { manager in Result { try body(manager) } }
        guard let result else { throw CollabError(.unavailable, "the cloud is shutting down") }
        return try result.get()
    }

    private func submit(_ op: Operation) {
        condition.lock()
        if stopped {
            condition.unlock()
            fail(op, CollabError(.unavailable, "the cloud is shutting down"))
            return
        }
        queue.append(op)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty && works.isEmpty && !stopped {
                if !condition.wait(until: Date().addingTimeInterval(1)) { break }  // idle expiry runs on a timer too
            }
            let ops = queue
            queue = []
            let done = stopped
            condition.unlock()
            if done {
                let error = CollabError(.unavailable, "the cloud is shutting down")
                ops.forEach { fail($0, error) }
                works.forEach { $0.fail(error) }
                works = []
                return
            }
            ops.forEach(apply)
            runPass()
            manager.expireIdle()
        }
    }

    /// Applies one operation. Truncate and close wait until their session's work is done, so they
    /// act on what the INFERs before them saw, as when they were served one at a time.
    private func apply(_ op: Operation) {
        switch op {
        case .open(let request, let owner, let c):
            c.resume(with: Result { try manager.open(request, owner: owner) })
        case .append(let id, let owner, let first, let rows, let payload, let c):
            c.resume(with: Result { try manager.append(id, owner: owner, firstPosition: first, rows: rows, payload: payload) })
        case .infer(let job, let cancelled, let c):
            enqueue(InferWork(job: job, cancelled: cancelled) { c.resume(with: $0.mapError { $0 as Error }) })
        case .naive(let request, let cancelled, let c):
            do {
                let states = try manager.decodeNaiveStep(request)
                enqueue(NaiveWork(states: states, sampling: request.sampling, cancelled: cancelled) {
                    c.resume(with: $0.mapError { $0 as Error })
                })
            } catch {
                c.resume(throwing: CollabError(wrapping: error))
            }
        case .generate(let request, let stream):
            startGeneration(request, stream)
        case .truncate(let id, let owner, let position, let c):
            drain(session: id)
            c.resume(with: Result { try manager.truncate(id, owner: owner, to: position) })
        case .close(let id, let owner, let c):
            drain(session: id)
            c.resume(with: Result { try manager.close(id, owner: owner) })
        case .inspect(let body):
            body(manager)
        }
    }

    private func enqueue(_ work: CloudWork) {
        work.arrival = arrivals
        arrivals += 1
        works.append(work)
    }

    private func startGeneration(_ request: GenerationRequest, _ stream: GenerationStream) {
        do {
            let positions = try manager.checkGeneration(request)
            let (cache, bytes) = try manager.admitGeneration(positions: positions)
            let manager = self.manager
            enqueue(GenerationWork(
                request: request, cache: cache, cancelled: stream.cancelled,
                emit: { stream.continuation.yield($0) },
                finish: { error in
                    manager.release(generationBytes: bytes)
                    if let error { stream.continuation.finish(throwing: error) } else { stream.continuation.finish() }
                }))
        } catch {
            stream.continuation.finish(throwing: CollabError(wrapping: error))
        }
    }

    /// Runs passes until no work of session `id` is left.
    private func drain(session id: SessionID) {
        while works.contains(where: { ($0 as? InferWork)?.job.session == id }) { runPass() }
    }

    /// One forward pass over the waiting works, planned under the row budget.
    private func runPass() {
        let cancelled = CollabError(.unavailable, "the request was cancelled")
        works.removeAll { work in
            let drop = work.isCancelled  // read once: the flag may be set from another thread meanwhile
            if drop { work.fail(cancelled) }
            return drop
        }
        if works.isEmpty { return }
        let ordered = works.sorted { ($0.lastServedPass, $0.arrival) < ($1.lastServedPass, $1.arrival) }
        var candidates: [(CloudWork, WorkDemand)] = []
        var finished = Set<ObjectIdentifier>()
        var caches = Set<ObjectIdentifier>()
        for work in ordered {
            do {
                let demand = try work.prepare(in: manager)
                // One slice per cache and pass: a session's next request waits for its previous one.
                guard caches.insert(ObjectIdentifier(demand.cache)).inserted else { continue }
                candidates.append((work, demand))
            } catch {
                work.fail(CollabError(wrapping: error))
                finished.insert(ObjectIdentifier(work))
            }
        }
        let budget = manager.limits.maxBatchRows
        let slices = PassPlanner.plan(candidates.map { PassPlanner.Demand(remaining: $0.1.remaining, scored: $0.1.scored) },
                                      budget: budget, chunkLimit: chunkLimit)
        let items = slices.map { PassItem(work: candidates[$0.index].0, demand: candidates[$0.index].1, rows: $0.rows, final: $0.final) }
        passes += 1
        items.forEach { $0.work.lastServedPass = passes }
        let started = Date()
        finished.formUnion(manager.runPass(items))
        // Chunks of long works follow the pass time (a row's cost depends on the batch and grows with
        // the context it attends to): halved when a pass with a chunk ran over the target, grown by a
        // quarter when it took under half of it. A pass alone is bounded too: whoever arrives during
        // it waits for its end.
        if items.contains(where: { !$0.final }) {
            let seconds = Date().timeIntervalSince(started)
            let target = manager.limits.passTargetSeconds
            if seconds > target {
                chunkLimit = max(1, chunkLimit / 2)
            } else if seconds < target / 2 {
                chunkLimit = min(budget, chunkLimit + max(1, chunkLimit / 4))
            }
        }
        works.removeAll { finished.contains(ObjectIdentifier($0)) }
    }

    private func fail(_ op: Operation, _ error: CollabError) {
        switch op {
        case .open(_, _, let c): c.resume(throwing: error)
        case .append(_, _, _, _, _, let c): c.resume(throwing: error)
        case .infer(_, _, let c): c.resume(throwing: error)
        case .naive(_, _, let c): c.resume(throwing: error)
        case .generate(_, let stream): stream.continuation.finish(throwing: error)
        case .truncate(_, _, _, let c): c.resume(throwing: error)
        case .close(_, _, let c): c.resume(throwing: error)
        case .inspect(let body): body(nil)
        }
    }
}

/// A naive step as it arrives: the edge's fingerprint and split, and all its boundary states.
public struct NaiveStepRequest: Sendable {
    public var fingerprint: [UInt8]
    public var splitLayer: Int
    public var wire: WireFormat
    public var rows: Int
    public var payload: [UInt8]
    public var sampling: SamplingParameters

    public init(fingerprint: [UInt8], splitLayer: Int, wire: WireFormat, rows: Int, payload: [UInt8],
                sampling: SamplingParameters) {
        self.fingerprint = fingerprint
        self.splitLayer = splitLayer
        self.wire = wire
        self.rows = rows
        self.payload = payload
        self.sampling = sampling
    }
}

/// Where a cloud-only generation's tokens go.
struct GenerationStream: Sendable {
    let continuation: AsyncThrowingStream<GeneratedToken, Error>.Continuation
    let cancelled: CancellationFlag
}
