import Foundation

/// Admits one generation at a time (the edge model holds one KV cache and its kernels already use
/// every core) with at most `capacity` requests waiting behind it, in arrival order. A request
/// beyond that is refused at once (`QueueFull`, a 503) rather than left to wait without bound, and a
/// waiting request whose client left (its task cancelled) gives up its place.
final class RequestQueue: @unchecked Sendable {
    /// The queue was full: retry after about `retryAfterSeconds`.
    struct QueueFull: Error {
        let waiting: Int
        let retryAfterSeconds: Int
    }

    let capacity: Int
    private let lock = NSLock()
    private var busy = false
    private var waiting: [(ticket: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    private var nextTicket: UInt64 = 0
    private var heldSince = Date()
    /// Smoothed seconds a generation holds the edge, for Retry-After.
    private var typicalHold = 1.0

    init(capacity: Int) { self.capacity = capacity }

    /// Requests waiting now (not counting the one running).
    var depth: Int { lock.withLock { waiting.count } }

    /// Throws `QueueFull` when a request arriving now would be refused.
    func checkRoom() throws {
        try lock.withLock {
            if busy && waiting.count >= capacity {
                throw QueueFull(waiting: waiting.count, retryAfterSeconds: max(1, Int(typicalHold.rounded(.up))))
            }
        }
    }

    /// Waits for the turn of the calling task; every successful call must be paired with `release()`.
    func acquire() async throws {
        try Task.checkCancellation()
        let ticket: UInt64? = try lock.withLock {
            if !busy {
                busy = true
                heldSince = Date()
                return nil
            }
            guard waiting.count < capacity else {
                throw QueueFull(waiting: waiting.count, retryAfterSeconds: max(1, Int(typicalHold.rounded(.up))))
            }
            defer { nextTicket += 1 }
            return nextTicket
        }
        guard let ticket else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let cancelled: Bool = lock.withLock {
                    if Task.isCancelled { return true }
                    waiting.append((ticket, continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let left: CheckedContinuation<Void, Error>? = lock.withLock {
                guard let index = waiting.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return waiting.remove(at: index).continuation
            }
            left?.resume(throwing: CancellationError())
        }
    }

    /// Ends the current generation's turn and hands the edge to the next waiting request.
    func release() {
        let next: CheckedContinuation<Void, Error>? = lock.withLock {
            let now = Date()
            typicalHold = 0.7 * typicalHold + 0.3 * now.timeIntervalSince(heldSince)
            heldSince = now
            if waiting.isEmpty {
                busy = false
                return nil
            }
            return waiting.removeFirst().continuation
        }
        next?.resume()
    }
}
