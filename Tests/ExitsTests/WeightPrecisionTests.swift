import Foundation
import LLM
import TestSupport
import XCTest

@testable import Exits

/// Trained blocks stored at reduced precision: the file gives back exactly the rounded weights the
/// calibrator evaluated, and a q8 layer block survives the engine's Q8_0 packing unchanged.
final class WeightPrecisionTests: XCTestCase {
    private func weights(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed)
        return (0..<count).map { _ in rng.weight() * 0.05 }
    }

    func testQ8RoundingStaysWithinHalfAStepAndIsIdempotent() {
        let values = weights(32 * 40 + 7, seed: 1)  // a partial last block too
        let rounded = WeightPrecision.q8.rounded(values)
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = start..<min(start + 32, values.count)
            let step = values[block].map(abs).max()! / 127
            for i in block { XCTAssertLessThanOrEqual(abs(rounded[i] - values[i]), step * 0.5 + step * 1e-3, "value \(i)") }
        }
        XCTAssertEqual(WeightPrecision.q8.rounded(rounded), rounded, "rounding twice changes nothing")
        XCTAssertEqual(WeightPrecision.f16.rounded(values), values.map { Float(Float16($0)) })
        XCTAssertEqual(WeightPrecision.f32.rounded(values), values)
    }

    /// A layer block's matrices are packed to Q8_0 at load; packing the q8-rounded rows must give the
    /// same products as the rounded values in f32 (f32 activations, so only the weights can differ).
    func testQ8RoundedRowsSurviveQ8_0Packing() throws {
        let rows = 16, columns = 576
        let rounded = WeightPrecision.q8.rounded(weights(rows * columns, seed: 2))
        let packed = try WeightMatrix(quantizing: rounded, rows: rows, columns: columns, type: .q8_0, activations: .f32)
        let exact = WeightMatrix(float: rounded, rows: rows, columns: columns)
        var rng = SplitMix64(3)
        let x = HiddenStates(values: (0..<2 * columns).map { _ in rng.activation() }, width: columns)
        let pool = ThreadPool(threadCount: 1)
        let (a, b) = (packed.apply(x, pool: pool), exact.apply(x, pool: pool))
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * max(1, abs(b[i])), "output \(i)") }
        // Unrounded weights do move under packing: the check above can fail.
        let raw = weights(rows * columns, seed: 2)
        let rawPacked = try WeightMatrix(quantizing: raw, rows: rows, columns: columns, type: .q8_0, activations: .f32)
        let drift = zip(rawPacked.apply(x, pool: pool), WeightMatrix(float: raw, rows: rows, columns: columns).apply(x, pool: pool))
            .map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(drift, 1e-3)
    }

    func testCalibrationFileGivesBackTheStoredPrecision() throws {
        let shape = ExitBlockShape(width: 64, hiddenWidth: 32, hasAdapter: true)
        let block = try ExitBlock(shape: shape, parameters: weights(shape.parameterCount, seed: 4))
        let lens = ExitCalibration.Evaluation(agreement: 0.1, exitRateAtPrecision: ["0.8": 0, "0.9": 0], curve: [])
        let calibration = ExitCalibration(
            fingerprint: ExitCalibration.hex(Array(0..<32)), split: 15, targetPrecision: 0.9,
            exits: [.init(layer: 15, block: .mlp(block), threshold: 0.9, testExitRate: 0.1, testPrecision: 0.9, adapter: lens, logitLens: lens)],
            shortlist: [], notes: [:])
        for precision in WeightPrecision.allCases {
            let path = NSTemporaryDirectory() + "collm-precision-\(precision)-\(UInt32.random(in: 0...UInt32.max)).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            try calibration.write(to: path, precision: precision)
            guard case let .mlp(read) = try ExitCalibration(path: path).exits[0].block else { return XCTFail("\(precision): not an mlp block") }
            XCTAssertEqual(read.parameters, precision.rounded(block.parameters), "\(precision)")
            if precision == .q8 {
                // Scales that do not cover the values are refused, never read short.
                var file = try SafetensorsFile(path: path)
                file.tensors["exit.15.mlp.q8_scale"] = .init(halfPrecision: [1, 2], shape: [2])
                try file.write(to: path)
                XCTAssertThrowsError(try ExitCalibration(path: path))
            }
        }
    }
}
