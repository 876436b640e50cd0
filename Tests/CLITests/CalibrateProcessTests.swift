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
        for mode in ["edge", "local"] {
            let g = try CollmProcess.run(["generate", "--model", model, "--chat", "--prompt", "Hello", "--mode", mode,
                                          "--max-tokens", "6", "--json"], environment: env)
            XCTAssertEqual(g.status, 0, g.err)
            XCTAssertFalse((try CollmProcess.json(g.out)["tokens"] as? [Int] ?? []).isEmpty, mode)
        }
    }
}
