import Foundation
import XCTest

/// `collm calibrate` end to end at a tiny scale, in a private cache: the JSON contract of the README
/// ("Commands"), the plot, the default file that `generate` then picks up, and `--report`.
final class CalibrateProcessTests: XCTestCase {
    func testCalibrateWritesTheDefaultFileThatGenerateUses() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("collm-cal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let env = ["COLLM_CACHE": cache]
        let model = CollmProcess.modelPath
        let svg = cache + "/curves.svg"
        let r = try CollmProcess.run(["calibrate", "--model", model, "--prompts", "3", "--max-tokens", "12", "--exits", "8,15",
                                      "--svg", svg, "--json"], timeout: 300, environment: env)
        XCTAssertEqual(r.status, 0, r.err)
        let json = try CollmProcess.json(r.out)
        XCTAssertEqual(json["split"] as? Int, 20, "the default split: two thirds of 30 layers")
        let exits = try XCTUnwrap(json["exits"] as? [[String: Any]])
        XCTAssertEqual(exits.compactMap { $0["layer"] as? Int }, [8, 15])
        for exit in exits {
            XCTAssertEqual(exit["block"] as? String, "ridge")
            XCTAssertNotNil(exit["agreement"] as? Double)
            XCTAssertNotNil(exit["threshold"] as? Double)
            let rates = try XCTUnwrap(exit["exit_rate_at_precision"] as? [String: Double])
            XCTAssertEqual(Set(rates.keys), ["0.8", "0.9"])
        }
        let path = try XCTUnwrap(json["path"] as? String)
        XCTAssertTrue(path.hasPrefix(cache + "/calibration/"), path)
        XCTAssertTrue(try String(contentsOfFile: svg, encoding: .utf8).hasPrefix("<svg"))

        // generate finds the file by model and split; --report prints the same exits.
        let g = try CollmProcess.run(["generate", "--model", model, "--prompt", "Hello", "--mode", "edge", "--max-tokens", "4",
                                      "--json"], environment: env)
        XCTAssertEqual(g.status, 0, g.err)
        XCTAssertEqual(try CollmProcess.json(g.out)["calibration"] as? String, path)
        let report = try CollmProcess.run(["calibrate", "--model", model, "--report", "--json"], environment: env)
        XCTAssertEqual(report.status, 0, report.err)
        XCTAssertEqual((try CollmProcess.json(report.out)["exits"] as? [[String: Any]])?.count, 2)
        // Another split has no calibration: a clear error, not a crash.
        let none = try CollmProcess.run(["calibrate", "--model", model, "--report", "--split", "14"], environment: env)
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.err.contains("no calibration for split 14"), none.err)
    }

    /// Blocks chosen per exit: a ridge adapter at 8 and a layer block at 15 in one file, which the
    /// edge then runs (the layer block with its own KV cache).
    func testPerExitBlocksIncludingALayerBlock() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("collm-cal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let env = ["COLLM_CACHE": cache]
        let model = CollmProcess.modelPath
        let r = try CollmProcess.run(["calibrate", "--model", model, "--prompts", "3", "--max-tokens", "12", "--exits", "8,15",
                                      "--block", "15:layer", "--samples", "1", "--epochs", "1", "--json"], timeout: 600, environment: env)
        XCTAssertEqual(r.status, 0, r.err)
        let exits = try XCTUnwrap(try CollmProcess.json(r.out)["exits"] as? [[String: Any]])
        XCTAssertEqual(exits.compactMap { $0["block"] as? String }, ["ridge", "layer"])
        // stderr is a pipe here: progress lines are rate-limited, but each epoch's validation loss is always logged.
        XCTAssertTrue(r.err.split(separator: "\n").contains { $0.contains("epoch 1/1") && $0.contains(", validation ") }, r.err)
        let training = try XCTUnwrap(exits[1]["training"] as? [String: Double])
        XCTAssertEqual(training["source_layer"], 29)
        XCTAssertEqual(try CollmProcess.json(r.out)["exit_rule"] as? String, "full")
        let path = try XCTUnwrap(try CollmProcess.json(r.out)["path"] as? String)

        // --blocks-from takes the trained block instead of training: on the same data, the same figures.
        let again = cache + "/again.safetensors"
        let base = ["calibrate", "--model", model, "--prompts", "3", "--max-tokens", "12", "--exits", "8,15", "--samples", "1",
                    "--blocks-from", path, "--json"]
        let g = try CollmProcess.run(base + ["--output", again], timeout: 600, environment: env)
        XCTAssertEqual(g.status, 0, g.err)
        XCTAssertFalse(g.err.contains(": training"), g.err)
        let reused = try XCTUnwrap(try CollmProcess.json(g.out)["exits"] as? [[String: Any]])
        for (a, b) in zip(exits, reused) {
            for key in ["layer", "block", "threshold", "test_exit_rate", "test_precision", "agreement"] {
                XCTAssertEqual("\(a[key] ?? "-")", "\(b[key] ?? "-")", "exit \(a["layer"] ?? "?"): \(key)")
            }
        }
        XCTAssertEqual(reused[1]["training"] as? [String: Double], training, "the block's training record comes along")

        // The shortlist rule: thresholds picked for it, recorded in the file, which the edge then runs.
        let shortlistFile = cache + "/shortlist.safetensors"
        let s = try CollmProcess.run(base + ["--output", shortlistFile, "--exit-rule", "shortlist", "--shortlist-min-count", "2"],
                                     timeout: 600, environment: env)
        XCTAssertEqual(s.status, 0, s.err)
        XCTAssertEqual(try CollmProcess.json(s.out)["exit_rule"] as? String, "shortlist")
        let e = try CollmProcess.run(["generate", "--model", model, "--chat", "--prompt", "Hello", "--mode", "edge", "--max-tokens", "6",
                                      "--calibration", shortlistFile, "--json"], environment: env)
        XCTAssertEqual(e.status, 0, e.err)
        // Cheaper checks: the given block rounded again to q4 and the shortlist's rows re-quantized to Q4_0, both
        // recorded; the edge runs the file.
        let compact = cache + "/compact.safetensors"
        let q = try CollmProcess.run(base + ["--output", compact, "--exit-rule", "shortlist", "--shortlist-min-count", "2",
                                             "--shortlist-rows", "q4_0", "--weights", "q4"], timeout: 600, environment: env)
        XCTAssertEqual(q.status, 0, q.err)
        let compactJSON = try CollmProcess.json(q.out)
        XCTAssertEqual(compactJSON["shortlist_rows"] as? String, "q4_0")
        XCTAssertEqual((compactJSON["exits"] as? [[String: Any]])?.last?["weights"] as? String, "q4")
        let c = try CollmProcess.run(["generate", "--model", model, "--chat", "--prompt", "Hello", "--mode", "edge", "--max-tokens", "6",
                                      "--calibration", compact, "--json"], environment: env)
        XCTAssertEqual(c.status, 0, c.err)
        for (arguments, message) in [(["--shortlist-rows", "q4_0"], "needs --exit-rule shortlist"),
                                     (["--exit-rule", "shortlist", "--shortlist-rows", "q3_k"], "--shortlist-rows takes")] {
            let bad = try CollmProcess.run(base + arguments + ["--output", cache + "/bad.safetensors"], environment: env)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.err.contains(message), bad.err)
        }
        // A file for another split is refused with the split to use.
        let wrong = try CollmProcess.run(base + ["--split", "16", "--output", cache + "/x.safetensors"], environment: env)
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.err.contains("made for split 20"), wrong.err)
        for mode in ["edge", "local"] {
            let g = try CollmProcess.run(["generate", "--model", model, "--chat", "--prompt", "Hello", "--mode", mode,
                                          "--max-tokens", "6", "--json"], environment: env)
            XCTAssertEqual(g.status, 0, g.err)
            XCTAssertFalse((try CollmProcess.json(g.out)["tokens"] as? [Int] ?? []).isEmpty, mode)
        }
    }
}
