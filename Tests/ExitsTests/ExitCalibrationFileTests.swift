import Foundation
import XCTest

@testable import CollabCore
@testable import Exits
@testable import LLM

final class ExitCalibrationFileTests: XCTestCase {
    private let fingerprint: [UInt8] = Array(0..<32)

    private func sample() -> ExitCalibration {
        let evaluation = ExitCalibration.Evaluation(
            agreement: 0.4, exitRateAtPrecision: ["0.8": 0.2, "0.9": 0.1],
            curve: [.init(threshold: 0.5, exitRate: 0.3, agreement: 0.7)])
        let lens = ExitCalibration.Evaluation(agreement: 0.1, exitRateAtPrecision: ["0.8": 0, "0.9": 0], curve: [])
        let width = 4
        return ExitCalibration(
            fingerprint: ExitCalibration.hex(fingerprint), split: 15, targetPrecision: 0.9,
            exits: [
                .init(layer: 8, block: .ridge(matrix: (0..<width * width).map(Float.init), bias: [1, 2, 3, 4]),
                      threshold: 0.93, testExitRate: 0.05, testPrecision: 0.91, adapter: evaluation, logitLens: lens),
                .init(layer: 15, block: .identity, threshold: 1.01, testExitRate: 0,
                      testPrecision: 1, adapter: lens, logitLens: lens),
            ],
            shortlist: [3, 17, 49_151], notes: ["prompts": "220"])
    }

    private func temporaryPath() -> String {
        NSTemporaryDirectory() + "collm-cal-\(UInt32.random(in: 0...UInt32.max)).safetensors"
    }

    func testRoundTrip() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try sample().write(to: path)
        XCTAssertEqual(try ExitCalibration(path: path), sample())
        XCTAssertEqual(try ExitCalibration(path: path).rule, .full)
        var shortlistRule = sample()
        shortlistRule.rule = .shortlist
        try shortlistRule.write(to: path)
        XCTAssertEqual(try ExitCalibration(path: path), shortlistRule)
        // Deciding over a shortlist needs one: a file without is refused, not run as if it said the full rule.
        shortlistRule.shortlist = []
        try shortlistRule.write(to: path)
        XCTAssertThrowsError(try ExitCalibration(path: path)) {
            XCTAssertTrue("\($0)".contains("shortlist"), "\($0)")
        }
    }

    func testRefusesAnotherModel() throws {
        XCTAssertNoThrow(try sample().check(fingerprint: fingerprint))
        XCTAssertThrowsError(try sample().check(fingerprint: Array(repeating: 7, count: 32))) {
            XCTAssertEqual(($0 as? CollabError)?.code, .fingerprintMismatch)
        }
    }

    func testRejectsBrokenAdapters() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try sample().write(to: path)
        var file = try SafetensorsFile(path: path)
        file.tensors["exit.8.bias"] = .init(floats: [1, 2, .nan, 4], shape: [4])
        try file.write(to: path)
        XCTAssertThrowsError(try ExitCalibration(path: path), "non-finite bias")
        file.tensors["exit.8.bias"] = .init(floats: [1, 2, 3], shape: [3])
        try file.write(to: path)
        XCTAssertThrowsError(try ExitCalibration(path: path), "matrix and bias disagree")
        file.metadata = [:]
        try file.write(to: path)
        XCTAssertThrowsError(try ExitCalibration(path: path), "not a calibration file")
    }

    /// The shipped calibration loads as a two-layer block at exit 20 (split 20) with SmolLM2's layer shape,
    /// and writing it again (q5, as shipped) gives the same tensors bit for bit and the same header: the
    /// stored weights are already on the Q5_0 grid, and the block enum reads and writes the format as it was.
    func testShippedCalibrationLoadsAndWritesUnchanged() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Exits/Resources/calibration/5dd57a008c0b0785-s20.safetensors").path
        let calibration = try ExitCalibration(path: shipped)
        XCTAssertEqual(calibration.split, 20)
        XCTAssertEqual(calibration.exits.map(\.layer), [20])
        for exit in calibration.exits {
            guard case let .layer(block) = exit.block else { return XCTFail("exit \(exit.layer): \(exit.block.name), expected layer") }
            XCTAssertEqual([block.shape.width, block.shape.headCount, block.shape.kvHeadCount, block.shape.headDim, block.shape.feedForwardWidth],
                           [576, 9, 3, 64, 1536])
            XCTAssertEqual(block.depth, 2)
            XCTAssertEqual(exit.weights, .q5)
        }
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try calibration.write(to: path)
        let (original, rewritten) = (try SafetensorsFile(path: shipped), try SafetensorsFile(path: path))
        XCTAssertEqual(rewritten.tensors, original.tensors)
        func header(_ file: SafetensorsFile) throws -> NSDictionary {
            try JSONSerialization.jsonObject(with: Data(file.metadata[ExitCalibration.metadataKey]!.utf8)) as! NSDictionary
        }
        XCTAssertEqual(try header(rewritten), try header(original))
        XCTAssertEqual(try ExitCalibration(path: path), calibration)
    }
}
