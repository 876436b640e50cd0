import Foundation
import LLM
import TestSupport
import XCTest

@testable import Exits

/// Trained blocks stored at reduced precision: the file gives back exactly the rounded weights the
/// calibrator evaluated, and a q8 (q5) layer block survives the engine's Q8_0 (Q5_0) packing unchanged.
final class WeightPrecisionTests: XCTestCase {
    /// The matrices of the packing checks: rows as wide as the default model's.
    private let rows = 16, columns = 576

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
        XCTAssertEqual(WeightPrecision.q8.packingFormat, .q8_0)
        let (x, pool) = try checkRoundedRowsSurvivePacking(.q8, seed: 2)
        // Unrounded weights do move under packing: the check above can fail.
        let raw = weights(rows * columns, seed: 2)
        let rawPacked = try WeightMatrix(quantizing: raw, rows: rows, columns: columns, type: .q8_0, activations: .f32)
        let drift = zip(rawPacked.apply(x, pool: pool), WeightMatrix(float: raw, rows: rows, columns: columns).apply(x, pool: pool))
            .map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(drift, 1e-3)
    }

    /// q5 follows ggml's Q5_0: steps of max|x|/16 per block of 32 on levels -16...15, so a value moves by
    /// at most half a step (a whole one past level 15.5, on the side opposite the largest value); the
    /// ranges kept exact come back bit for bit.
    func testQ5RoundingStaysWithinHalfAStepAndKeepsExactRanges() {
        var values = weights(32 * 40 + 7, seed: 5)
        let exact = [3..<40, 700..<701]
        for i in exact[0] { values[i] = 1 + values[i] }  // norm-like values, far larger than the rest of their blocks
        let rounded = WeightPrecision.q5.rounded(values, keeping: exact)
        for range in exact { XCTAssertEqual(Array(rounded[range]), Array(values[range])) }
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = start..<min(start + 32, values.count)
            let step = values[block].map(abs).max()! / 16
            for i in block where !exact.contains(where: { $0.contains(i) }) {
                let bound = abs(values[i]) <= 15.5 * step ? step * 0.5 : step
                XCTAssertLessThanOrEqual(abs(rounded[i] - values[i]), bound + step * 1e-2, "value \(i)")
            }
        }
        let plain = WeightPrecision.q5.rounded(values)
        XCTAssertNotEqual(Array(plain[exact[0]]), Array(values[exact[0]]), "without keeping, q5 rounds every value")
        XCTAssertEqual(WeightPrecision.q5.rounded(plain), plain, "rounding twice changes nothing")
    }

    /// A q5 layer block is packed to Q5_0 at load; the packed rows must be the stored values.
    func testQ5RoundedRowsSurviveQ5_0Packing() throws {
        XCTAssertEqual(WeightPrecision.q5.packingFormat, .q5_0)
        _ = try checkRoundedRowsSurvivePacking(.q5, seed: 6)
    }

    /// q4 follows ggml's Q4_0: steps of max|x|/8 on levels -8...7 (norms kept exact, as for q5), and a q4 layer
    /// block packs to Q4_0, which gives back the stored values.
    func testQ4RoundingStaysWithinHalfAStepAndSurvivesQ4_0Packing() throws {
        var values = weights(32 * 40 + 7, seed: 9)
        let exact = [5..<30]
        for i in exact[0] { values[i] = 1 + values[i] }
        let rounded = WeightPrecision.q4.rounded(values, keeping: exact)
        XCTAssertEqual(Array(rounded[exact[0]]), Array(values[exact[0]]))
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = start..<min(start + 32, values.count)
            let step = values[block].map(abs).max()! / 8
            for i in block where !exact[0].contains(i) {
                let bound = abs(values[i]) <= 7.5 * step ? step * 0.5 : step
                XCTAssertLessThanOrEqual(abs(rounded[i] - values[i]), bound + step * 1e-2, "value \(i)")
            }
        }
        XCTAssertEqual(WeightPrecision.q4.rounded(rounded, keeping: exact), rounded, "rounding twice changes nothing")
        XCTAssertEqual(WeightPrecision.q4.packingFormat, .q4_0)
        _ = try checkRoundedRowsSurvivePacking(.q4, seed: 10)
    }

    /// Rows rounded to `precision`, packed into its packing format, give the same products as the
    /// rounded values in f32 (f32 activations, so only the weights can differ). Returns the input used.
    private func checkRoundedRowsSurvivePacking(_ precision: WeightPrecision, seed: UInt64) throws -> (HiddenStates, ThreadPool) {
        let rounded = precision.rounded(weights(rows * columns, seed: seed))
        let packed = try WeightMatrix(quantizing: rounded, rows: rows, columns: columns, type: precision.packingFormat, activations: .f32)
        let exact = WeightMatrix(float: rounded, rows: rows, columns: columns)
        var rng = SplitMix64(seed + 1)
        let x = HiddenStates(values: (0..<2 * columns).map { _ in rng.activation() }, width: columns)
        let pool = ThreadPool(threadCount: 1)
        let (a, b) = (packed.apply(x, pool: pool), exact.apply(x, pool: pool))
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * max(1, abs(b[i])), "\(precision) output \(i)") }
        return (x, pool)
    }

    /// A two-layer block stored as q5: its norms come back exact, the rest as rounded, and the exit
    /// knows to pack as Q5_0; a file whose exact ranges do not fit its values is refused.
    func testQ5LayerBlockFileKeepsItsNormsAndPacking() throws {
        let shape = TransformerExitShape(width: 64, headCount: 2, kvHeadCount: 1, headDim: 32, feedForwardWidth: 96)
        var values = weights(2 * shape.parameterCount, seed: 8)
        let block0 = try StackedTransformerExitBlock(shape: shape, depth: 2, parameters: values)
        for range in block0.normParameters { for i in range { values[i] += 1 } }
        let block = try StackedTransformerExitBlock(shape: shape, depth: 2, parameters: values)
        XCTAssertEqual(block.normParameters.count, 4)
        let lens = ExitCalibration.Evaluation(agreement: 0.1, exitRateAtPrecision: ["0.8": 0, "0.9": 0], curve: [])
        var calibration = ExitCalibration(
            fingerprint: ExitCalibration.hex(Array(0..<32)), split: 15, targetPrecision: 0.9,
            exits: [.init(layer: 15, block: .layer(block), threshold: 0.9, testExitRate: 0.1, testPrecision: 0.9, adapter: lens, logitLens: lens)],
            shortlist: [], notes: [:])
        let path = NSTemporaryDirectory() + "collm-q5-layer-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        calibration.exits[0].weights = .q5
        try calibration.write(to: path)
        let exit = try ExitCalibration(path: path).exits[0]
        XCTAssertEqual(exit.weights, .q5)
        guard case let .layer(read) = exit.block else { return XCTFail("not a layer block") }
        XCTAssertEqual(read.parameters, WeightPrecision.q5.rounded(values, keeping: block.normParameters))
        for range in block.normParameters { XCTAssertEqual(Array(read.parameters[range]), Array(values[range])) }
        // What `calibrate --blocks-from --weights` evaluates: the block as the file gives it back.
        guard case let .layer(again) = ExitCalibration.Block.layer(block).rounded(to: .q5) else { return XCTFail("not a layer block") }
        XCTAssertEqual(again.parameters, read.parameters)
        // About 5.5 bits a weight.
        let bytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertLessThan(Double(bytes), Double(values.count) * 5.6 / 8 + 4096)
        calibration.exits[0].weights = .q8
        try calibration.write(to: path)
        XCTAssertEqual(try ExitCalibration(path: path).exits[0].weights, .q8)
        // Ranges past the values, or kept values that do not add up, are refused, never read short.
        calibration.exits[0].weights = .q5
        try calibration.write(to: path)
        for (name, tensor) in [("exit.15.layer.exact_ranges", SafetensorsFile.Tensor(ints: [0, Int32(values.count + 1)], shape: [1, 2])),
                               ("exit.15.layer.exact", SafetensorsFile.Tensor(floats: [1, 2, 3], shape: [3]))] {
            var file = try SafetensorsFile(path: path)
            file.tensors[name] = tensor
            let broken = path + ".broken"
            defer { try? FileManager.default.removeItem(atPath: broken) }
            try file.write(to: broken)
            XCTAssertThrowsError(try ExitCalibration(path: broken), name)
        }
    }

    func testCalibrationFileGivesBackTheStoredPrecision() throws {
        let shape = ExitBlockShape(width: 64, hiddenWidth: 32, hasAdapter: true)
        let block = try ExitBlock(shape: shape, parameters: weights(shape.parameterCount, seed: 4))
        let lens = ExitCalibration.Evaluation(agreement: 0.1, exitRateAtPrecision: ["0.8": 0, "0.9": 0], curve: [])
        var calibration = ExitCalibration(
            fingerprint: ExitCalibration.hex(Array(0..<32)), split: 15, targetPrecision: 0.9,
            exits: [.init(layer: 15, block: .mlp(block), threshold: 0.9, testExitRate: 0.1, testPrecision: 0.9, adapter: lens, logitLens: lens)],
            shortlist: [], notes: [:])
        for precision in WeightPrecision.allCases {
            let path = NSTemporaryDirectory() + "collm-precision-\(precision)-\(UInt32.random(in: 0...UInt32.max)).safetensors"
            defer { try? FileManager.default.removeItem(atPath: path) }
            calibration.exits[0].weights = precision
            try calibration.write(to: path)
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
