import CKernels
import Foundation
import XCTest
import TestSupport

@testable import LLM



private var availableIsas: [ck_isa] { (0...ck_isa_best().rawValue).map { ck_isa(rawValue: $0) } }

/// Real K-quant tensors: the Gemma 3 270M Q4_K_M file holds Q4_K, Q6_K, Q5_0 and Q8_0 matrices.
/// Dequantization is checked against values from gguf-py (ggml's own Python reader, run once to make
/// the constants below), and the engine's products against the f64 product of the dequantized rows.
final class KQuantTensorTests: XCTestCase {
    /// The file is memory-mapped: opening it per test is cheap.
    private func gemma() throws -> GGUFFile { try GGUFFile(path: try TestResources.gemmaModelPath()) }

    private func dequantized(_ file: GGUFFile, _ t: GGUFTensorInfo) -> [Float] {
        let data = file.data(for: t)
        return [Float](unsafeUninitializedCapacity: t.elementCount) { buffer, count in
            ck_dequantize_row_ref(ck_type(rawValue: t.type.rawValue), data.baseAddress!, buffer.baseAddress!, Int64(t.elementCount))
            count = t.elementCount
        }
    }

    /// gguf-py's dequantization of four tensors: f64 sum, sum of squares, elements 0, 1, 1000 and the last.
    func testDequantizationMatchesGGUFPy() throws {
        let file = try gemma()
        let expected: [(String, GGMLType, Double, Double, [Float])] = [
            ("blk.0.attn_output.weight", .q4_K, -1.8330761790275574, 930.2992641774874,
             [-0.015705108642578125, 0.04966926574707031, 0.023328781127929688, -0.011407613754272461]),
            ("blk.0.attn_q.weight", .q5_0, -51.693368911743164, 1025.197383899027,
             [-0.0037841796875, 0.007568359375, 0.027618408203125, 0.01312255859375]),
            ("blk.0.attn_v.weight", .q8_0, 1.5544872283935547, 256.0193953019168,
             [0.0060882568359375, -0.03957366943359375, 0.14848899841308594, -0.05296611785888672]),
            ("blk.0.ffn_down.weight", .q6_K, 6.480193614959717, 610.7072775584979,
             [0.0052117109298706055, 0.02171546220779419, -0.036128997802734375, -0.00941401720046997]),
        ]
        for (name, type, sum, squares, elements) in expected {
            let t = try XCTUnwrap(file.tensor(named: name), name)
            XCTAssertEqual(t.type, type, name)
            XCTAssertTrue(t.type.isSupported, name)
            let y = dequantized(file, t)
            XCTAssertEqual([y[0], y[1], y[1000], y[y.count - 1]], elements, name)
            let s = y.reduce(0.0) { $0 + Double($1) }, q = y.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(s, sum, accuracy: 1e-9 * squares, name)
            XCTAssertEqual(q, squares, accuracy: 1e-9 * squares, name)
        }
    }

    /// Fast products (int8 and f32 activations, every ISA) against the dequantized-f32 reference on real rows.
    func testProductsOnRealTensors() throws {
        let file = try gemma()
        let pool = ThreadPool(threadCount: 2)
        var found: Set<GGMLType> = []
        for t in file.tensors where t.shape.count == 2 && t.rows <= 4096 && !found.contains(t.type)
            && [.q4_K, .q6_K, .q5_0, .q8_0].contains(t.type) {
            found.insert(t.type)
            var rng = SplitMix64(UInt64(t.rows))
            let n = 5
            let x = (0..<(n * t.columns)).map { _ in rng.activation() }
            let w = dequantized(file, t)
            var ref = [Float](repeating: 0, count: n * t.rows)
            for j in 0..<n {
                for r in 0..<t.rows {
                    var acc = 0.0
                    for c in 0..<t.columns { acc += Double(w[r * t.columns + c]) * Double(x[j * t.columns + c]) }
                    ref[j * t.rows + r] = Float(acc)
                }
            }
            for isa in availableIsas {
                ck_isa_set(isa)
                defer { ck_isa_set(ck_isa_best()) }
                for precision in ActivationPrecision.allCases {
                    let m = try WeightMatrix(file: file, tensors: [t], activations: precision)
                    let y = m.apply(HiddenStates(values: x, width: t.columns), pool: pool)
                    let err = relativeError(y, ref)
                    XCTAssertLessThan(err, precision == .f32 ? 1e-5 : 1e-2,
                                      "\(t.name) \(t.type) \(String(cString: ck_isa_name(isa))) \(precision)")
                }
            }
        }
        XCTAssertEqual(found, [.q4_K, .q6_K, .q5_0, .q8_0])
    }

    /// A stack of tensors of different types (Q5_0 Q and K, Q8_0 V in Gemma's layer 0) is one matrix
    /// whose rows equal the separate products.
    func testMixedTypeStack() throws {
        let file = try gemma()
        let pool = ThreadPool(threadCount: 2)
        let names = ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"]
        let tensors = try names.map { try XCTUnwrap(file.tensor(named: $0), $0) }
        XCTAssertEqual(tensors.map(\.type), [.q5_0, .q5_0, .q8_0])
        var rng = SplitMix64(3)
        let x = HiddenStates(values: (0..<(3 * 640)).map { _ in rng.activation() }, width: 640)
        for precision in ActivationPrecision.allCases {
            let stack = try WeightMatrix(file: file, tensors: tensors, activations: precision)
            XCTAssertEqual(stack.rows, tensors.reduce(0) { $0 + $1.rows })
            let y = stack.apply(x, pool: pool)
            var offset = 0
            for t in tensors {
                let part = try WeightMatrix(file: file, tensors: [t], activations: precision).apply(x, pool: pool)
                for j in 0..<3 {
                    XCTAssertEqual(Array(y[(j * stack.rows + offset)..<(j * stack.rows + offset + t.rows)]),
                                   Array(part[(j * t.rows)..<((j + 1) * t.rows)]), "\(t.name) \(precision) row \(j)")
                }
                offset += t.rows
            }
        }
    }

    /// Q2_K and Q3_K through the engine (no model file of these types in the test data): a GGUF with
    /// Q2_K, Q3_K and Q4_K tensors of 512 columns (rows quantized by the kernels' reference
    /// quantizers) loads as one stacked matrix whose products, int8 and f32 activations on every
    /// ISA, match the f64 product of the reference dequantization.
    func testQ2_KAndQ3_KTensors() throws {
        let columns = 512
        let types: [(String, GGMLType, Int)] = [("a", .q2_K, 19), ("b", .q3_K, 13), ("c", .q4_K, 8)]
        var b = GGUFBuilder()
        b.add("general.architecture", string: "llama")
        var rng = SplitMix64(23)
        var w: [Float] = []
        for (name, type, rows) in types {
            let t = ck_type(rawValue: type.rawValue)
            let rb = ck_row_bytes(t, Int64(columns))
            var bytes = [UInt8](repeating: 0, count: rb * rows)
            var dq = [Float](repeating: 0, count: columns)
            for r in 0..<rows {
                let row = (0..<columns).map { _ in rng.uniform() * 0.05 }
                bytes.withUnsafeMutableBytes { ck_quantize_row_ref(t, row, $0.baseAddress! + r * rb, Int64(columns)) }
                bytes.withUnsafeBytes { ck_dequantize_row_ref(t, $0.baseAddress! + r * rb, &dq, Int64(columns)) }
                w += dq
            }
            b.addTensor(name, shape: [columns, rows], type: type.rawValue, bytes: Data(bytes))
        }
        let tmp = TemporaryFile(b.build())
        let file = try GGUFFile(path: tmp.path)
        let tensors = try types.map { try XCTUnwrap(file.tensor(named: $0.0), $0.0) }
        XCTAssertEqual(tensors.map(\.type), [.q2_K, .q3_K, .q4_K])
        XCTAssertEqual(tensors.map(\.type.description), ["Q2_K", "Q3_K", "Q4_K"])
        let rows = types.reduce(0) { $0 + $1.2 }, n = 3
        let x = (0..<(n * columns)).map { _ in rng.activation() }
        var ref = [Float](repeating: 0, count: n * rows)
        for j in 0..<n {
            for r in 0..<rows {
                var acc = 0.0
                for c in 0..<columns { acc += Double(w[r * columns + c]) * Double(x[j * columns + c]) }
                ref[j * rows + r] = Float(acc)
            }
        }
        let pool = ThreadPool(threadCount: 2)
        for isa in availableIsas {
            ck_isa_set(isa)
            defer { ck_isa_set(ck_isa_best()) }
            for precision in ActivationPrecision.allCases {
                let m = try WeightMatrix(file: file, tensors: tensors, activations: precision)
                XCTAssertEqual(m.rows, rows)
                let y = m.apply(HiddenStates(values: x, width: columns), pool: pool)
                XCTAssertLessThan(relativeError(y, ref), precision == .f32 ? 1e-5 : 1e-2,
                                  "\(String(cString: ck_isa_name(isa))) \(precision)")
            }
        }
    }

    /// A tensor type the kernels lack is refused with its name, not a crash.
    func testUnsupportedTypeIsNamed() throws {
        var b = GGUFBuilder()
        b.add("general.architecture", string: "llama")
        b.addTensor("w", shape: [256, 2], type: 15, bytes: Data(count: 2 * 292))  // Q8_K
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kq-unsupported-\(getpid()).gguf")
        try b.build().write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try GGUFFile(path: url.path)
        let t = try XCTUnwrap(file.tensor(named: "w"))
        XCTAssertFalse(t.type.isSupported)
        XCTAssertThrowsError(try WeightMatrix(file: file, tensors: [t])) { error in
            XCTAssertTrue("\(error)".contains("Q8_K"), "\(error)")
        }
    }
}
