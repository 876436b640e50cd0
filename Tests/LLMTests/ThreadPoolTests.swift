import Synchronization
import XCTest

@testable import LLM

final class ThreadPoolTests: XCTestCase {
    func testEveryItemRunsExactlyOnceAcrossManyRounds() {
        let pool = ThreadPool(threadCount: 3)
        for round in 0..<2000 {
            let count = 1 + round % 7
            let hits = Mutex([Int](repeating: 0, count: count))
            pool.run(count) { i in hits.withLock { $0[i] += 1 } }
            XCTAssertEqual(hits.withLock { $0 }, [Int](repeating: 1, count: count), "round \(round)")
        }
    }

    func testParallelRangesCoverTotalOnGranules() {
        let pool = ThreadPool(threadCount: 2)
        for total in [1, 7, 8, 9, 64, 100, 49_152] {
            for granule in [1, 4, 8, 16] {
                let seen = Mutex<[Range<Int>]>([])
                pool.parallelRanges(total: total, granule: granule) { r in seen.withLock { $0.append(r) } }
                let ranges = seen.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, total)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                for r in ranges { XCTAssertEqual(r.lowerBound % granule, 0) }
            }
        }
    }

    func testIdlePoolSleepsAndWakes() throws {
        let pool = ThreadPool(threadCount: 2)
        Thread.sleep(forTimeInterval: 0.2)  // long enough for workers to stop spinning
        let total = Atomic<Int>(0)
        pool.run(8) { i in total.add(i, ordering: .relaxed) }
        XCTAssertEqual(total.load(ordering: .relaxed), 28)
    }
}
