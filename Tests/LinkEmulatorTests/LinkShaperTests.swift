@testable import LinkEmulator
import XCTest

/// The timing model alone, with exact arithmetic (no sockets, no clocks).
final class LinkShaperTests: XCTestCase {
    func testDelayAndSerialisation() {
        // 8 Mbit/s: 1000 bytes take 1 ms; 20 ms one-way delay.
        var shaper = LinkShaper(profile: LinkProfile(delayMs: 20, rateMbit: 8))
        XCTAssertEqual(shaper.arrival(ofBytes: 1000, readAt: 0), 21_000_000)
        // Read at the same time: queued behind the first chunk.
        XCTAssertEqual(shaper.arrival(ofBytes: 1000, readAt: 0), 22_000_000)
        // Read after the link went idle: starts fresh.
        XCTAssertEqual(shaper.arrival(ofBytes: 500, readAt: 100_000_000), 120_500_000)
    }

    func testUnlimitedRateIsDelayOnly() {
        var shaper = LinkShaper(profile: LinkProfile(delayMs: 5, rateMbit: 0))
        XCTAssertEqual(shaper.arrival(ofBytes: 1 << 20, readAt: 7), 5_000_007)
    }

    func testJitterNeverReordersAndStaysInBounds() {
        var shaper = LinkShaper(profile: LinkProfile(delayMs: 10, rateMbit: 0, jitterMs: 8))
        var last: Int64 = 0
        var delays: [Int64] = []
        for i in 0..<1000 {
            let now = Int64(i) * 100_000  // a chunk every 0.1 ms
            let arrival = shaper.arrival(ofBytes: 100, readAt: now)
            XCTAssertGreaterThanOrEqual(arrival, last)
            XCTAssertGreaterThanOrEqual(arrival - now, 2_000_000)
            delays.append(arrival - now)
            last = arrival
        }
        XCTAssertGreaterThan(delays.max()! - delays.min()!, 4_000_000, "jitter had no visible effect")
        XCTAssertLessThanOrEqual(delays.max()!, 18_000_000 + 100_000)
    }

    func testProfileValidationAndParsing() throws {
        XCTAssertThrowsError(try LinkProfile(oneWayDelay: -1).validate())
        XCTAssertThrowsError(try LinkProfile(rateBitsPerSecond: 0).validate())
        XCTAssertThrowsError(try LinkProfile(jitter: .nan).validate())
        XCTAssertEqual(try HostPort(parsing: "127.0.0.1:80"), HostPort(host: "127.0.0.1", port: 80))
        XCTAssertEqual(try HostPort(parsing: "[::1]:8080"), HostPort(host: "::1", port: 8080))
        XCTAssertThrowsError(try HostPort(parsing: "localhost"))
        XCTAssertThrowsError(try HostPort(parsing: "localhost:0"))
        XCTAssertNoThrow(try HostPort(parsing: "localhost:0", allowZero: true))
        XCTAssertThrowsError(try HostPort(parsing: ":80"))
        XCTAssertThrowsError(try HostPort(parsing: "h:70000"))
    }
}
