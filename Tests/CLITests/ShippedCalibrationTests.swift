import Foundation
import XCTest

/// The default model's shipped exit calibration (`Sources/Exits/Resources/calibration/`): it belongs to the
/// default model, it is what a cache without a calibration uses, and it carries the held-out curve recorded
/// when it was fitted (README, "Early exits: calibration": a two-layer block at exit 20 of split 20, q5 weights,
/// deciding over its 5,162-token shortlist, threshold for 94% precision, 7,724 test tokens).
final class ShippedCalibrationTests: XCTestCase {
    /// Held-out exit rates at 80% and 90% precision and thresholds, as the calibration run printed them.
    private let recorded: [Int: (rate80: Double, rate90: Double, threshold: Double)] = [
        20: (0.44924909373381666, 0.25, 0.8345234),
    ]

    func testShippedFileMatchesTheModelAndItsRecordedCurve() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("collm-empty-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: cache) }
        // An empty cache: --report finds the shipped file, which must pass the model's fingerprint check.
        let r = try CollmProcess.run(["calibrate", "--report", "--json", "--model", CollmProcess.modelPath],
                                     environment: ["COLLM_CACHE": cache.path])
        XCTAssertEqual(r.status, 0, r.err)
        let report = try CollmProcess.json(r.out)
        let path = try XCTUnwrap(report["path"] as? String)
        XCTAssertTrue(path.contains("calibration/") && path.hasSuffix("-s20.safetensors"), path)
        XCTAssertLessThanOrEqual(try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int), 5 << 20)
        XCTAssertEqual(report["split"] as? Int, 20, "the default split")
        XCTAssertEqual(report["exit_rule"] as? String, "shortlist", "a decided token never reads the full head")
        XCTAssertEqual(report["shortlist_size"] as? Int, 5_162)
        let exits = try XCTUnwrap(report["exits"] as? [[String: Any]])
        XCTAssertEqual(exits.compactMap { $0["layer"] as? Int }, [20])
        for exit in exits {
            let layer = try XCTUnwrap(exit["layer"] as? Int)
            let expected = try XCTUnwrap(recorded[layer])
            XCTAssertEqual(exit["block"] as? String, "layer")
            XCTAssertEqual(exit["layer_depth"] as? Int, 2, "two layers, stored as q5 to fit 5 MB")
            XCTAssertEqual(exit["weights"] as? String, "q5")
            let rates = try XCTUnwrap(exit["exit_rate_at_precision"] as? [String: Double])
            XCTAssertEqual(try XCTUnwrap(rates["0.8"]), expected.rate80, accuracy: 1e-9, "exit \(layer)")
            XCTAssertEqual(try XCTUnwrap(rates["0.9"]), expected.rate90, accuracy: 1e-9, "exit \(layer)")
            XCTAssertEqual(try XCTUnwrap(exit["threshold"] as? Double), expected.threshold, accuracy: 1e-6, "exit \(layer)")
        }
        // A file made for another split is refused with a clear error, never silently used.
        let other = try CollmProcess.run(["calibrate", "--report", "--calibration", path, "--split", "14", "--model", CollmProcess.modelPath],
                                         environment: ["COLLM_CACHE": cache.path])
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.err.contains("split"), other.err)
    }
}
