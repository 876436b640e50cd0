import CKernels
import Foundation
import Synchronization

/// A persistent fork/join pool for the kernels. Workers spin briefly waiting for work (a dispatch
/// costs well under a microsecond, which matters for the many small matrices of a 135M model), then
/// sleep on a condition so an idle engine uses no CPU.
/// `run` must be called from one thread at a time; the calling thread works too.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let state: PoolState

    /// - Parameter threadCount: threads doing work, the caller included; at least 1.
    public init(threadCount: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.threadCount = max(1, threadCount)
        state = PoolState()
        for index in 1..<self.threadCount {
            let state = self.state
            let thread = Thread { state.workerLoop() }
            thread.name = "collm-worker-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit { state.stop() }

    /// Runs `body(i)` for every i in 0..<count across the pool and returns when all are done.
    public func run(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { state.runRound(count: count, body: $0) }
    }

    /// Splits 0..<total into at most one contiguous range per thread, each starting at a multiple
    /// of `granule`, and runs `body(range)` on each.
    public func parallelRanges(total: Int, granule: Int = 1, _ body: (Range<Int>) -> Void) {
        let g = max(1, granule)
        let units = (total + g - 1) / g
        let parts = max(1, min(threadCount, units))
        run(parts) { part in
            let lo = units * part / parts * g
            let hi = min(total, units * (part + 1) / parts * g)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// Shared between the pool and its workers (workers hold it, not the pool, so the pool can be freed).
private final class PoolState: @unchecked Sendable {
    let generation = Atomic<Int>(0)
    let nextItem = Atomic<Int>(0)
    let remaining = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    var itemCount = 0
    var body: ((Int) -> Void)?
    let sleepLock = NSCondition()
    var sleepers = 0
    /// Spin iterations before a worker sleeps (tens of microseconds).
    static let spinLimit = 50_000
    static let roundMask = 0x7FFF_FFFF

    func runRound(count: Int, body: @escaping (Int) -> Void) {
        self.body = body
        itemCount = count
        remaining.store(count, ordering: .relaxed)
        let round = (generation.load(ordering: .relaxed) + 1) & Self.roundMask
        // Tickets carry the round, so a worker still finishing an earlier round cannot take an item.
        nextItem.store(round << 32, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        sleepLock.lock()
        if sleepers > 0 { sleepLock.broadcast() }
        sleepLock.unlock()
        drainItems(round: round)
        while remaining.load(ordering: .acquiring) > 0 { ck_cpu_relax() }
        self.body = nil
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        sleepLock.lock()
        sleepLock.broadcast()
        sleepLock.unlock()
    }

    func drainItems(round: Int) {
        var ticket = nextItem.load(ordering: .acquiring)
        while true {
            guard ticket >> 32 == round, ticket & 0xFFFF_FFFF < itemCount else { return }
            let (exchanged, original) = nextItem.compareExchange(
                expected: ticket, desired: ticket + 1, ordering: .acquiringAndReleasing)
            if !exchanged {
                ticket = original
                continue
            }
            body?(ticket & 0xFFFF_FFFF)
            remaining.subtract(1, ordering: .releasing)
            ticket = nextItem.load(ordering: .acquiring)
        }
    }

    func workerLoop() {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins < Self.spinLimit {
                    ck_cpu_relax()
                } else {
                    sleepLock.lock()
                    sleepers += 1
                    while generation.load(ordering: .acquiring) == seen { sleepLock.wait() }
                    sleepers -= 1
                    sleepLock.unlock()
                    spins = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            drainItems(round: current & Self.roundMask)
        }
    }
}
