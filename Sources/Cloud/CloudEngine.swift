import CollabCore
import Foundation
import LLM

/// Runs the context manager on one engine thread and batches work from concurrent sessions:
/// requests queue up while a forward pass runs, and the next pass serves every queued INFER at
/// once (continuous batching). Callers use async methods from any task.
public final class CloudEngine: @unchecked Sendable {
    private enum Operation {
        case open(OpenRequest, owner: String, CheckedContinuation<OpenReply, Error>)
        case append(SessionID, owner: String, first: Int, rows: Int, payload: [UInt8], CheckedContinuation<Int, Error>)
        case infer(InferJob, CheckedContinuation<TokenReply, Error>)
        case truncate(SessionID, owner: String, position: Int, CheckedContinuation<Int, Error>)
        case close(SessionID, owner: String, CheckedContinuation<Void, Error>)
        case inspect(@Sendable (ContextManager?) -> Void)
    }

    private let manager: ContextManager
    private let condition = NSCondition()
    private var queue: [Operation] = []
    private var stopped = false

    public init(manager: ContextManager) {
        self.manager = manager
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

    public func infer(_ job: InferJob) async throws -> TokenReply {
        try await withCheckedThrowingContinuation { submit(.infer(job, $0)) }
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
            while queue.isEmpty && !stopped { _ = condition.wait(until: Date().addingTimeInterval(5)) }
            let work = queue
            queue = []
            let done = stopped
            condition.unlock()
            if done {
                work.forEach { fail($0, CollabError(.unavailable, "the cloud is shutting down")) }
                return
            }
            process(work)
            manager.expireIdle()
        }
    }

    /// Applies queued operations in order, collecting INFERs into one batch that is flushed before
    /// any operation that could change what an INFER sees (truncate, close).
    private func process(_ work: [Operation]) {
        var batch: [(InferJob, CheckedContinuation<TokenReply, Error>)] = []
        func flush() {
            while !batch.isEmpty {
                let results = manager.inferBatch(batch.map(\.0))
                var deferred: [(InferJob, CheckedContinuation<TokenReply, Error>)] = []
                for (item, result) in zip(batch, results) {
                    switch result {
                    case .success(let reply)?: item.1.resume(returning: reply)
                    case .failure(let error)?: item.1.resume(throwing: error)
                    case nil: deferred.append(item)
                    }
                }
                batch = deferred
            }
        }
        for op in work {
            switch op {
            case .infer(let job, let c):
                batch.append((job, c))
            case .append(let id, let owner, let first, let rows, let payload, let c):
                c.resume(with: Result { try manager.append(id, owner: owner, firstPosition: first, rows: rows, payload: payload) })
            case .open(let request, let owner, let c):
                flush()  // admission may evict: serve queued INFERs first
                c.resume(with: Result { try manager.open(request, owner: owner) })
            case .truncate(let id, let owner, let position, let c):
                flush()
                c.resume(with: Result { try manager.truncate(id, owner: owner, to: position) })
            case .close(let id, let owner, let c):
                flush()
                c.resume(with: Result { try manager.close(id, owner: owner) })
            case .inspect(let body):
                flush()
                body(manager)
            }
        }
        flush()
    }

    private func fail(_ op: Operation, _ error: CollabError) {
        switch op {
        case .open(_, _, let c): c.resume(throwing: error)
        case .append(_, _, _, _, _, let c): c.resume(throwing: error)
        case .infer(_, let c): c.resume(throwing: error)
        case .truncate(_, _, _, let c): c.resume(throwing: error)
        case .close(_, _, let c): c.resume(throwing: error)
        case .inspect(let body): body(nil)
        }
    }
}
