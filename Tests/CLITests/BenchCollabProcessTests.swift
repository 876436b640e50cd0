import Foundation
import XCTest

/// `collm bench collab --quick` end to end (cloud and edges as real processes): the JSON is complete,
/// and its bytes, round trips and cloud work agree with the protocol's arithmetic.
final class BenchCollabProcessTests: XCTestCase {
    func testQuickRunIsCompleteAndConsistent() throws {
        try CollmProcess.quickBench("collab", timeout: 300) { folder in
            for file in ["collab.json", "collab.md", "collab-time.svg", "collab-bytes.svg", "collab-accuracy.svg"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), file)
            }
            let svg = try String(contentsOf: folder.appendingPathComponent("collab-time.svg"), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("collab.json"))) as? [String: Any])
            let setup = try XCTUnwrap(report["setup"] as? [String: Any])
            let (layers, split) = (try XCTUnwrap(setup["layers"] as? Int), try XCTUnwrap(setup["split"] as? Int))
            XCTAssertEqual(report["errors"] as? [String], [])
            let runs = try XCTUnwrap(report["runs"] as? [[String: Any]])
            let summaries = try XCTUnwrap(report["summaries"] as? [[String: Any]])
            // local + edge x2 thresholds + (collab x2, cloud, naive, spec x2) on one link = 9 configurations, 2 prompts each.
            XCTAssertEqual(summaries.count, 9)
            XCTAssertEqual(runs.count, 18)
            XCTAssertEqual(Set(summaries.compactMap { $0["mode"] as? String }), ["local", "edge", "collab", "cloud", "naive", "spec"])
            XCTAssertEqual(Set(summaries.compactMap { $0["threshold"].map { "\($0)" } }), ["calibrated", "1"])
            let stateBytes = 576 * 2  // one f16 boundary state
            for run in runs {
                let mode = try XCTUnwrap(run["mode"] as? String)
                let output = try XCTUnwrap(run["output"] as? [String: Any])
                let tokens = try XCTUnwrap(output["tokens"] as? [Int])
                let sources = try XCTUnwrap(output["sources"] as? [String])
                XCTAssertEqual(sources.count, tokens.count)
                let prompt = try XCTUnwrap(output["prompt_tokens"] as? Int)
                let steps = tokens.count + ((output["stop_reason"] as? String) == "eos" ? 1 : 0)
                let positions = prompt + steps - 1
                let (up, trips) = (try XCTUnwrap(output["bytes_up"] as? Int), try XCTUnwrap(output["round_trips"] as? Int))
                let (splitRows, fullRows) = (try XCTUnwrap(run["cloud_split_rows"] as? Int), try XCTUnwrap(run["cloud_full_rows"] as? Int))
                let (linkUp, linkDown) = (try XCTUnwrap(run["link_bytes_up"] as? Int), try XCTUnwrap(run["link_bytes_down"] as? Int))
                let cloudTokens = sources.filter { $0 == "cloud" }.count
                let what = "\(mode) \(run["threshold"] ?? "-") \(run["prompt_id"] ?? "")"
                if ["edge", "collab"].contains(mode) {
                    let thresholds = try XCTUnwrap((output["exits"] as? [String: Any])?["thresholds"] as? [String: Double], what)
                    XCTAssertFalse(thresholds.isEmpty, what)
                    // "calibrated" passes no --threshold: generate keeps the calibration's own, not 1.0.
                    if (run["threshold"] as? String) == "calibrated" {
                        XCTAssertTrue(thresholds.values.contains { $0 != 1 }, "\(what): \(thresholds)")
                    } else {
                        XCTAssertTrue(thresholds.values.allSatisfy { $0 == 1 }, "\(what): \(thresholds)")
                    }
                }
                switch mode {
                case "local", "edge":
                    XCTAssertEqual([up, trips, splitRows, fullRows, linkUp, linkDown], [0, 0, 0, 0, 0, 0], what)
                    XCTAssertEqual(run["cloud_layer_work"] as? Int, 0)
                    XCTAssertEqual(run["edge_layer_work"] as? Int, positions * (mode == "local" ? layers : split))
                    if mode == "local" { XCTAssertEqual(run["exact_match"] as? Bool, true) }
                case "collab":
                    // One OPEN, then one INFER per cloud token (plus one if the cloud also chose end-of-sequence).
                    XCTAssertTrue((0...1).contains(trips - 1 - cloudTokens), "\(what): \(trips) round trips, \(cloudTokens) cloud tokens")
                    // The cloud computed each position once, up to the last INFER; every state crossed once.
                    if let last = sources.lastIndex(of: "cloud") { XCTAssertGreaterThanOrEqual(splitRows, prompt + last, what) }
                    XCTAssertLessThanOrEqual(splitRows, positions, what)
                    XCTAssertGreaterThanOrEqual(up, splitRows * stateBytes, what)
                    XCTAssertLessThanOrEqual(Double(up), Double(positions * stateBytes) * 1.05, what)
                    XCTAssertEqual(fullRows, 0)
                    if sources.allSatisfy({ $0 == "cloud" }) { XCTAssertEqual(splitRows, positions, what) }
                case "naive":
                    // Every step re-sends and recomputes the whole context.
                    let resent = (0..<steps).reduce(0) { $0 + prompt + $1 }
                    XCTAssertEqual(splitRows, resent, what)
                    XCTAssertEqual(trips, steps, what)
                    XCTAssertGreaterThanOrEqual(up, resent * stateBytes, what)
                    XCTAssertLessThan(Double(up), Double(resent * stateBytes) * 1.05, what)
                case "cloud":
                    XCTAssertEqual(trips, 1, what)
                    XCTAssertEqual(fullRows, positions, what)
                    XCTAssertEqual(splitRows, 0, what)
                    XCTAssertEqual(run["exact_match"] as? Bool, true, "the cloud runs the same full model: \(what)")
                case "spec":
                    // One OPEN, then one VERIFY (or INFER) per round; each round decides at least one token.
                    let rounds = try XCTUnwrap((output["speculation"] as? [String: Int])?["rounds"])
                    XCTAssertEqual(trips, 1 + rounds, what)
                    XCTAssertLessThanOrEqual(rounds, steps, what)
                    XCTAssertGreaterThanOrEqual(up, positions * stateBytes, what)
                    XCTAssertEqual(fullRows, 0)
                default:
                    XCTFail("unexpected mode \(mode)")
                }
                if mode != "local" && mode != "edge" {
                    // The emulated link carried at least what the protocol counted, plus little HTTP/2 overhead.
                    XCTAssertGreaterThanOrEqual(linkUp, up, what)
                    XCTAssertLessThan(Double(linkUp), Double(up) * 1.1 + 4096, what)
                    XCTAssertEqual(run["cloud_layer_work"] as? Int, splitRows * (layers - split) + fullRows * layers, what)
                }
            }
            let md = try String(contentsOf: folder.appendingPathComponent("collab.md"), encoding: .utf8)
            XCTAssertEqual(md.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| mode") }.count, 9)
        }
    }

    func testBadArgumentsAreClearErrors() throws {
        let cases: [([String], String)] = [
            (["bench", "collab", "--modes", "local,teleport"], "unknown mode 'teleport'"),
            (["bench", "collab", "--links", "20"], "RTT_MS:MBIT"),
            (["bench", "collab", "--thresholds", "0.5,x"], "--thresholds"),
            (["bench", "collab", "--wire", "f8"], "--wire"),
        ]
        for (args, expected) in cases {
            let r = try CollmProcess.run(args, timeout: 30)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.err.contains(expected), "\(args): \(r.err)")
        }
    }
}
