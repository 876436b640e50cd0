import Bench
import Foundation
import XCTest

/// A misconfigured edge stops with a clear error instead of degrading every token in silence; only
/// an unreachable cloud degrades, and that is announced on stderr once per episode.
final class LoudFailureProcessTests: XCTestCase {
    private func collab(_ cloud: String, _ extra: [String] = [], environment: [String: String] = [:])
        throws -> (status: Int32, out: String, err: String) {
        try CollmProcess.run(["generate", "--prompt", "What is the capital of France?", "--chat", "--mode", "collab",
                              "--cloud", cloud, "--calibration", "none", "--max-tokens", "4", "--threads", "1", "--json"] + extra,
                             environment: environment)
    }

    func testWrongTokenEndsGenerateWithAnAuthenticationError() throws {
        let cloud = try CloudProcess(extra: ["--token", "secret"])
        defer { cloud.stop() }
        let wrong = try collab(cloud.address, environment: ["COLLM_TOKEN": "wrong"])
        XCTAssertNotEqual(wrong.status, 0, "a refused token must not look like an outage: \(wrong.out)")
        XCTAssertTrue(wrong.err.contains("unauthenticated") && wrong.err.contains("COLLM_TOKEN"), wrong.err)
        XCTAssertFalse(wrong.out.contains("degraded"), wrong.out)
        // The right token collaborates: the test above failed for the token, not for the cloud.
        let right = try collab(cloud.address, environment: ["COLLM_TOKEN": "secret"])
        XCTAssertEqual(right.status, 0, right.err)
        XCTAssertEqual(try CollmProcess.json(right.out)["sources"] as? [String], Array(repeating: "cloud", count: 4))
    }

    func testSplitMismatchEndsGenerateWithAClearError() throws {
        let cloud = try CloudProcess()
        defer { cloud.stop() }
        let r = try collab(cloud.address, ["--split", "12"])
        XCTAssertNotEqual(r.status, 0, r.out)
        XCTAssertTrue(r.err.contains("fingerprint mismatch") && r.err.contains("--split"), r.err)
    }

    func testUnreachableCloudDegradesAndSaysSoOnce() throws {
        let r = try collab("127.0.0.1:9", ["--max-tokens", "6"])
        XCTAssertEqual(r.status, 0, r.err)
        let sources = try XCTUnwrap(try CollmProcess.json(r.out)["sources"] as? [String])
        XCTAssertTrue(!sources.isEmpty && sources.allSatisfy { $0 == "edge:20:degraded" }, "\(sources)")
        // Six degraded tokens (and the reconnects in between) make one episode: one notice when it
        // began, one saying the generation ended inside it.
        XCTAssertEqual(r.err.components(separatedBy: "cloud unreachable since").count - 1, 1, r.err)
        XCTAssertTrue(r.err.contains("ended with the cloud still unreachable"), r.err)
    }

    func testServeRefusesToStartWhenItsCloudRefusesIt() throws {
        let cloud = try CloudProcess(extra: ["--token", "secret"])
        defer { cloud.stop() }
        let r = try CollmProcess.run(["serve", "--port", "0", "--mode", "collab", "--cloud", cloud.address, "--calibration", "none",
                                      "--threads", "1"], timeout: 60, environment: ["COLLM_TOKEN": "wrong"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("unauthenticated"), r.err)
        XCTAssertFalse(r.err.contains("listening"), r.err)
    }
}

extension LoudFailureProcessTests {
    /// serve with its cloud down: it starts (announcing the outage), answers degraded, and its
    /// metrics show the episode; once the cloud is up the episode ends.
    func testServeAnnouncesAndCountsDegradation() async throws {
        let port = try LoopbackPort.free()
        let server = try ServeProcessTests.ServeProcess(["--mode", "collab", "--cloud", "127.0.0.1:\(port)", "--calibration", "none"])
        defer { server.stop() }
        XCTAssertTrue(server.startupLog.contains("cloud unreachable since"), server.startupLog)
        let body = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}"#
        let degraded = try await server.call("/v1/chat/completions", body: body)
        XCTAssertEqual(degraded.status, 200, degraded.text)
        XCTAssertTrue(degraded.text.contains("edge:20:degraded"), degraded.text)
        var metrics = try await server.call("/metrics").text
        XCTAssertTrue(metrics.contains("collm_cloud_degraded 1"), metrics)
        XCTAssertTrue(metrics.contains("collm_cloud_degraded_episodes_total 1"), metrics)

        let cloud = try CloudProcess.restarting(onPort: port)
        defer { cloud.stop() }
        let served = try await server.call("/v1/chat/completions", body: body)
        XCTAssertTrue(served.text.contains(#""cloud""#), served.text)
        metrics = try await server.call("/metrics").text
        XCTAssertTrue(metrics.contains("collm_cloud_degraded 0"), metrics)
        XCTAssertTrue(metrics.contains("collm_cloud_degraded_episodes_total 1"), metrics)
    }
}
