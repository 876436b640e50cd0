import Foundation
import XCTest

/// `collm bench scale --quick`: 1 and 2 concurrent clients against one cloud process.
final class BenchScaleProcessTests: XCTestCase {
    func testQuickRunReportsEveryRound() throws {
        try CollmProcess.quickBench("scale", timeout: 180) { folder in
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("scale.json"))) as? [String: Any])
            let rounds = try XCTUnwrap(report["rounds"] as? [[String: Any]])
            XCTAssertEqual(rounds.compactMap { $0["clients"] as? Int }, [1, 2])
            for round in rounds {
                let clients = try XCTUnwrap(round["clients"] as? Int)
                let tokens = try XCTUnwrap(round["tokens"] as? Int)
                XCTAssertGreaterThan(tokens, 0)
                XCTAssertLessThanOrEqual(tokens, clients * 8)
                // Every cloud-decided token is an INFER, so the cloud ran at least one batch per cloud token of
                // the busiest client; the shipped exit decides the others at the edge.
                let share = try XCTUnwrap(round["cloud_token_share"] as? Double)
                XCTAssertTrue(share > 0 && share <= 1, "\(share)")
                let cloudTokens = Int((Double(tokens) * share).rounded())
                XCTAssertGreaterThanOrEqual(try XCTUnwrap(round["cloud_batches"] as? Int), cloudTokens / clients)
                let sessions = try XCTUnwrap(round["mean_batch_sessions"] as? Double)
                XCTAssertTrue(sessions >= 1 && sessions <= Double(clients), "\(sessions)")
                let (p50, p99) = (try XCTUnwrap(round["p50_token_ms"] as? Double), try XCTUnwrap(round["p99_token_ms"] as? Double))
                XCTAssertTrue(p50 > 0 && p99 >= p50)
                XCTAssertGreaterThan(try XCTUnwrap(round["cloud_rss_mib"] as? Double), 0)
            }
            for file in ["scale.md", "scale-throughput.svg", "scale-latency.svg", "scale-batch.svg"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), file)
            }
        }
    }
}
