import Foundation
import LinkEmulator
import TestSupport
import XCTest

/// The proxy on loopback: delay and rate must be applied within 10%, bytes never reordered,
/// cut/restore must drop and refuse connections. Each test runs in about a second.
final class LinkEmulatorTests: XCTestCase {
    private var target: TestTarget!

    override func setUpWithError() throws { target = try TestTarget() }
    override func tearDown() { target.stop() }

    private func start(_ profile: LinkProfile) async throws -> LinkEmulator {
        try await LinkEmulator.start(listen: HostPort(host: "127.0.0.1", port: 0),
                                     target: HostPort(host: "127.0.0.1", port: target.port), profile: profile)
    }

    private func seconds(_ from: UInt64, _ to: UInt64) -> Double { Double(to - from) / 1e9 }

    /// Median round trip of small echoes: twice the one-way delay.
    func testDelayIsAppliedInEachDirection() async throws {
        let link = try await start(LinkProfile(delayMs: 25, rateMbit: 100))
        let socket = try TestSocket(port: link.address.port)
        try socket.send("E")
        var rtts: [Double] = []
        for i in 0..<9 {
            let message = Array("ping \(i)".utf8)
            let t0 = DispatchTime.now().uptimeNanoseconds
            try socket.send(message)
            XCTAssertEqual(try socket.receive(exactly: message.count), message)
            rtts.append(seconds(t0, DispatchTime.now().uptimeNanoseconds))
        }
        let median = rtts.sorted()[rtts.count / 2]
        print("linkem delay: configured RTT 50 ms, measured median \(String(format: "%.2f", median * 1000)) ms")
        XCTAssertEqual(median, 0.050, accuracy: 0.005)
        await link.stop()
    }

    /// A 1.5 MB download at 20 Mbit/s: the bytes arrive at the configured rate.
    func testRateCapDownstream() async throws {
        let link = try await start(LinkProfile(delayMs: 5, rateMbit: 20))
        let socket = try TestSocket(port: link.address.port)
        let total = 1_500_000
        try socket.send("D\(total)\n")
        var first: (time: UInt64, bytes: Int)?
        var last: UInt64 = 0
        _ = try socket.receive(exactly: total) { time, n in
            if first == nil { first = (time, n) }
            last = time
        }
        let rate = Double(total - first!.bytes) * 8 / seconds(first!.time, last) / 1e6
        print("linkem rate down: configured 20 Mbit/s, measured \(String(format: "%.2f", rate)) Mbit/s")
        XCTAssertEqual(rate, 20, accuracy: 2)
        await link.stop()
    }

    /// A 1.5 MB upload at 20 Mbit/s, timed where it lands (the target).
    func testRateCapUpstream() async throws {
        let link = try await start(LinkProfile(delayMs: 5, rateMbit: 20))
        let socket = try TestSocket(port: link.address.port)
        let total = 1_500_000
        try socket.send("U")
        try socket.send([UInt8](repeating: 7, count: total))
        let deadline = Date().addingTimeInterval(10)
        while target.uploadArrivals.reduce(0, { $0 + $1.bytes }) < total && Date() < deadline {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        let arrivals = target.uploadArrivals
        XCTAssertEqual(arrivals.reduce(0) { $0 + $1.bytes }, total)
        let rate = Double(total - arrivals[0].bytes) * 8 / seconds(arrivals[0].time, arrivals.last!.time) / 1e6
        print("linkem rate up: configured 20 Mbit/s, measured \(String(format: "%.2f", rate)) Mbit/s")
        XCTAssertEqual(rate, 20, accuracy: 2)
        await link.stop()
    }

    /// With jitter, round trips vary but every byte arrives in order.
    func testJitterKeepsByteOrder() async throws {
        let link = try await start(LinkProfile(delayMs: 10, rateMbit: 0, jitterMs: 6))
        let socket = try TestSocket(port: link.address.port)
        try socket.send("E")
        let sequence = (0..<400).map { UInt8($0 % 251) }
        for chunk in stride(from: 0, to: sequence.count, by: 20) {
            try socket.send(Array(sequence[chunk..<chunk + 20]))
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        XCTAssertEqual(try socket.receive(exactly: sequence.count), sequence)
        await link.stop()
    }

    /// Cut drops live connections and refuses new ones; restore accepts again. Steered in-process
    /// and through the control endpoint.
    func testCutAndRestore() async throws {
        let link = try await start(LinkProfile(delayMs: 1, rateMbit: 0))
        let control = try await link.startControl(at: HostPort(host: "127.0.0.1", port: 0))
        let live = try TestSocket(port: link.address.port)
        try live.send("Ehello")
        XCTAssertEqual(try live.receive(exactly: 5), Array("hello".utf8))

        try await link.cut()
        XCTAssertEqual(try live.receive(), [], "a cut link must drop its connections")
        XCTAssertThrowsError(try TestSocket(port: link.address.port), "a cut link must refuse connections")
        let status = try await link.status()
        XCTAssertTrue(status.cut)
        XCTAssertEqual(status.active_connections, 0)

        try await link.restore()
        let again = try TestSocket(port: link.address.port)
        try again.send("Eback")
        XCTAssertEqual(try again.receive(exactly: 4), Array("back".utf8))

        // The same through the control endpoint's line protocol.
        let steer = try TestSocket(port: control.port)
        func command(_ line: String) throws -> [String: Any] {
            try steer.send(line + "\n")
            var reply: [UInt8] = []
            while reply.last != UInt8(ascii: "\n") { reply += try steer.receive() }
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any])
        }
        XCTAssertEqual(try command("status")["cut"] as? Bool, false)
        XCTAssertEqual(try command("cut")["cut"] as? Bool, true)
        XCTAssertEqual(try again.receive(), [])
        XCTAssertThrowsError(try TestSocket(port: link.address.port))
        XCTAssertEqual(try command("restore")["cut"] as? Bool, false)
        XCTAssertNoThrow(try TestSocket(port: link.address.port))
        let changed = try command("set delay-ms 7 rate-mbit 3")
        XCTAssertEqual(changed["delay_ms"] as? Double, 7)
        XCTAssertEqual(changed["rate_mbit"] as? Double, 3)
        XCTAssertNotNil(try command("teleport")["error"])
        await link.stop()
    }
}
