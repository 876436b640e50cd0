import Foundation
import XCTest

/// `collm bench load --quick` end to end (a real cloud process, virtual users through the link
/// emulator): the JSON is complete, and its requests and tokens add up across modes.
final class BenchLoadProcessTests: XCTestCase {
    func testQuickRunIsCompleteAndConsistent() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("collm-load-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let r = try CollmProcess.run(["bench", "load", "--quick", "--json", "--modes", "collab,spec,cloud", "--cloud-cpu", "-1",
                                      "--output", folder.path], timeout: 600)
        XCTAssertEqual(r.status, 0, r.err)
        for file in ["load.json", "load.md", "load-tpot.svg", "load-cpu.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), file)
        }
        let report = try CollmProcess.json(r.out)
        XCTAssertEqual(report["slo_ms"] as? Double, 100)
        let modes = try XCTUnwrap(report["modes"] as? [[String: Any]])
        XCTAssertEqual(modes.compactMap { $0["mode"] as? String }, ["collab", "spec", "cloud"])
        var tokensByUsers: [String: [Int: Int]] = [:]
        for mode in modes {
            let name = try XCTUnwrap(mode["mode"] as? String)
            let points = try XCTUnwrap(mode["points"] as? [[String: Any]])
            XCTAssertEqual(points.compactMap { $0["users"] as? Int }, [1, 2], name)
            XCTAssertNotNil(mode["capacity_users"] as? Int)
            for point in points {
                let users = try XCTUnwrap(point["users"] as? Int)
                let tokens = try XCTUnwrap(point["tokens"] as? Int)
                let wall = try XCTUnwrap(point["wall_s"] as? Double)
                // --quick: every user sends exactly one request, and none fails.
                XCTAssertEqual(point["requests"] as? Int, users, name)
                XCTAssertEqual(point["errors"] as? Int, 0, "\(name): \(point["first_error"] ?? "")")
                XCTAssertEqual(try XCTUnwrap(point["tokens_per_s"] as? Double), Double(tokens) / wall, accuracy: 1e-6)
                for key in ["tpot_p50_ms", "tpot_p99_ms", "ttft_p99_ms", "cloud_cpu_s_per_1k_tokens", "cloud_rss_mib"] {
                    XCTAssertGreaterThan(try XCTUnwrap(point[key] as? Double, key), 0, "\(name) \(key)")
                }
                XCTAssertLessThanOrEqual(try XCTUnwrap(point["tpot_p50_ms"] as? Double), try XCTUnwrap(point["tpot_p99_ms"] as? Double))
                tokensByUsers[name, default: [:]][users] = tokens
            }
        }
        // Cloud-only users stream exactly the token counts of the collab recording, session for session.
        XCTAssertEqual(tokensByUsers["cloud"], tokensByUsers["collab"])
        XCTAssertGreaterThan(tokensByUsers["cloud"]?[2] ?? 0, tokensByUsers["cloud"]?[1] ?? 0)
    }
}
