import CKernels
import XCTest

final class FormatTests: XCTestCase {
    func testTypeInfo() {
        for t in allTypes { XCTAssertEqual(ck_type_supported(Int32(t.rawValue)), 1) }
        XCTAssertEqual(ck_type_supported(15), 0)  // Q8_K: an activation format in ggml, no weights here
        XCTAssertEqual(ck_type_supported(10), 1)  // Q2_K (KQuantTests)
        XCTAssertEqual(ck_type_supported(11), 1)  // Q3_K (KQuantTests)
        XCTAssertEqual(ck_type_supported(12), 1)  // Q4_K (KQuantTests)
        XCTAssertEqual(ck_block_elements(CK_F32), 1)
        XCTAssertEqual(ck_block_elements(CK_Q4_1), 32)
        XCTAssertEqual(ck_row_bytes(CK_F32, 10), 40)
        XCTAssertEqual(ck_row_bytes(CK_F16, 10), 20)
        XCTAssertEqual(ck_row_bytes(CK_BF16, 10), 20)
        XCTAssertEqual(ck_row_bytes(CK_Q4_0, 64), 36)
        XCTAssertEqual(ck_row_bytes(CK_Q4_1, 576), 18 * 20)
        XCTAssertEqual(ck_row_bytes(CK_Q8_0, 576), 18 * 34)
        XCTAssertEqual(ck_isa_name(CK_ISA_SCALAR).map { String(cString: $0) }, "scalar")
        XCTAssertGreaterThanOrEqual(ck_row_granule(CK_Q4_1), 1)
    }

    func testQ4_0HandComputed() {
        var blk: [UInt8] = [0x00, 0x38]  // d = 0.5
        for j in 0..<16 { blk.append(UInt8(j | ((15 - j) << 4))) }
        let y = dequantizeRow(CK_Q4_0, blk, count: 32)
        for j in 0..<16 {
            XCTAssertEqual(y[j], Float(j - 8) * 0.5)
            XCTAssertEqual(y[j + 16], Float(7 - j) * 0.5)
        }
    }

    func testQ4_1HandComputed() {
        var blk: [UInt8] = [0x00, 0x34, 0x00, 0xBC]  // d = 0.25, m = -1
        for j in 0..<16 { blk.append(UInt8(j | ((15 - j) << 4))) }
        let y = dequantizeRow(CK_Q4_1, blk, count: 32)
        for j in 0..<16 {
            XCTAssertEqual(y[j], Float(j) * 0.25 - 1)
            XCTAssertEqual(y[j + 16], Float(15 - j) * 0.25 - 1)
        }
    }

    func testQ8_0HandComputed() {
        var blk: [UInt8] = [0x00, 0x40]  // d = 2
        let qs: [Int8] = (0..<32).map { (i: Int) -> Int8 in
            let v: Int = i * 8 - 128 + (i == 31 ? 7 : 0)
            return Int8(v)
        }  // -128 ... 127
        blk += qs.map { UInt8(bitPattern: $0) }
        let y = dequantizeRow(CK_Q8_0, blk, count: 32)
        for j in 0..<32 { XCTAssertEqual(y[j], Float(qs[j]) * 2) }
        XCTAssertEqual(y[0], -256)
        XCTAssertEqual(y[31], 254)
    }

    func testFloatFormatsHandComputed() {
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x0400]
        let f16Want: [Float] = [1, -2, 0.5, 65504, 0x1p-24, -0.0, .infinity, 0x1p-14]
        var bytes: [UInt8] = []
        for h in f16 { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        XCTAssertEqual(dequantizeRow(CK_F16, bytes, count: 8), f16Want)
        let bf: [UInt16] = [0x3F80, 0xC000, 0x4049, 0x0001]
        bytes = []
        for h in bf { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        XCTAssertEqual(dequantizeRow(CK_BF16, bytes, count: 4), [1, -2, 3.140625, Float(bitPattern: 0x0001_0000)])
        let f: [Float] = [1.5, -3, 0, 7e-39]
        bytes = f.withUnsafeBytes { Array($0) }
        XCTAssertEqual(dequantizeRow(CK_F32, bytes, count: 4), f)
    }

    /// quantize_ref -> dequantize_ref stays within each format's step size.
    func testQuantizeRoundTrip() {
        var rng = Rng(1)
        let n = 32 * 64
        var x = (0..<n).map { _ in rng.weight() }
        for j in 0..<32 { x[j] = 0 }                       // an all-zero block
        for j in 32..<64 { x[j] = 3.25 }                   // a constant block
        for j in 64..<96 { x[j] = Float(j - 80) * 1e-6 }   // a tiny block (f16-subnormal scales)
        for t in allTypes {
            let q = quantizeMatrix(t, x, rows: 1, cols: n)
            let y = dequantizeRow(t, q, count: n)
            let bs = isQuant(t) ? 32 : 1
            for b in 0..<(n / bs) {
                let blk = x[(b * bs)..<((b + 1) * bs)]
                let amax = blk.map { abs($0) }.max()!
                let range = blk.max()! - blk.min()!
                let tol: Float
                switch t.rawValue {
                case CK_F32.rawValue: tol = 0
                case CK_F16.rawValue: tol = amax * 0x1p-11 + 0x1p-25
                case CK_BF16.rawValue: tol = amax * 0x1p-8
                case CK_Q8_0.rawValue: tol = amax / 127 * 0.5 + amax * 0x1p-10 + 1e-7
                case CK_Q4_0.rawValue: tol = amax / 8 + amax * 0x1p-9 + 1e-7  // the side opposite the max clamps
                default: tol = range / 15 * 0.5 + (amax + range) * 0x1p-10 + 1e-7  // Q4_1
                }
                // f16 scales may be subnormal: absolute error up to 2^-25 per unit of |q|
                let scaleSlack: Float = isQuant(t) ? 128 * 0x1p-25 : 0
                for i in (b * bs)..<((b + 1) * bs) {
                    XCTAssertLessThanOrEqual(abs(y[i] - x[i]), tol + scaleSlack, "\(typeName(t)) element \(i)")
                }
            }
        }
    }

    /// ck_dequantize_row on every ISA equals the reference bit for bit.
    func testFastDequantizeMatchesReference() {
        var rng = Rng(2)
        let n = 32 * 40
        let x = (0..<n).map { _ in rng.weight() }
        for t in allTypes {
            var q = quantizeMatrix(t, x, rows: 1, cols: n)
            if t.rawValue == CK_F16.rawValue || t.rawValue == CK_BF16.rawValue {
                // random finite bit patterns, subnormals included
                for i in stride(from: 0, to: q.count, by: 2) {
                    var h = UInt16(truncatingIfNeeded: rng.next())
                    let expMask: UInt16 = t.rawValue == CK_F16.rawValue ? 0x7C00 : 0x7F80
                    if h & expMask == expMask { h &= ~0x4000 }
                    q[i] = UInt8(h & 0xFF); q[i + 1] = UInt8(h >> 8)
                }
            } else if isQuant(t) {
                // random quants (scales stay the quantizer's)
                let bb = Int(ck_row_bytes(t, 32)), hdr = t.rawValue == CK_Q4_1.rawValue ? 4 : 2
                for b in 0..<(n / 32) { for i in hdr..<bb { q[b * bb + i] = UInt8(truncatingIfNeeded: rng.next()) } }
            }
            let ref = dequantizeRow(t, q, count: n)
            for isa in availableIsas {
                let fast = withIsa(isa) { dequantizeRow(t, q, count: n, fast: true) }
                XCTAssertEqual(fast.map(\.bitPattern), ref.map(\.bitPattern), "\(typeName(t)) on \(String(cString: ck_isa_name(isa)))")
            }
        }
    }

    func testF16Conversions() {
        // every half round-trips through f32 (nans stay nans, made quiet)
        for h in 0...0xFFFF {
            let h16 = UInt16(h)
            let f = ck_f16_to_f32(h16)
            let isNan = (h16 & 0x7C00) == 0x7C00 && (h16 & 0x3FF) != 0
            if isNan {
                XCTAssertTrue(f.isNaN)
                XCTAssertEqual(ck_f32_to_f16(f), h16 | 0x200)
            } else {
                XCTAssertEqual(ck_f32_to_f16(f), h16, "half \(h)")
                XCTAssertEqual(f, Float(Float16(bitPattern: h16)), "half \(h)")
            }
        }
        XCTAssertEqual(ck_f32_to_f16(.infinity), 0x7C00)
        XCTAssertEqual(ck_f32_to_f16(-.infinity), 0xFC00)
        XCTAssertTrue(ck_f16_to_f32(ck_f32_to_f16(.nan)).isNaN)
        XCTAssertEqual(ck_f32_to_f16(65519), 0x7BFF)    // rounds down to max
        XCTAssertEqual(ck_f32_to_f16(65520), 0x7C00)    // rounds up to inf
        XCTAssertEqual(ck_f32_to_f16(1e10), 0x7C00)
        XCTAssertEqual(ck_f32_to_f16(0x1p-24), 0x0001)  // smallest subnormal
        XCTAssertEqual(ck_f32_to_f16(0x1p-25), 0x0000)  // tie -> even (zero)
        XCTAssertEqual(ck_f32_to_f16(0x1.8p-24), 0x0002)  // tie -> even (2)
        XCTAssertEqual(ck_f32_to_f16(-0x1p-30), 0x8000)
        XCTAssertEqual(ck_f32_to_f16(1 + 0x1p-11), 0x3C00)  // tie -> even
        XCTAssertEqual(ck_f32_to_f16(1 + 0x1.8p-10), 0x3C02)
        // random floats agree with Swift's Float16 conversion (IEEE round to nearest even)
        var rng = Rng(3)
        for _ in 0..<200_000 {
            let bits = UInt32(truncatingIfNeeded: rng.next())
            let f = Float(bitPattern: bits)
            if f.isNaN { continue }
            XCTAssertEqual(ck_f32_to_f16(f), Float16(f).bitPattern, "f32 bits \(bits)")
        }
    }

    func testBF16Conversions() {
        for h in 0...0xFFFF {
            let h16 = UInt16(h)
            let f = ck_bf16_to_f32(h16)
            XCTAssertEqual(f.bitPattern, UInt32(h16) << 16)
            if f.isNaN { XCTAssertTrue(ck_bf16_to_f32(ck_f32_to_bf16(f)).isNaN) }
            else { XCTAssertEqual(ck_f32_to_bf16(f), h16) }
        }
        XCTAssertEqual(ck_f32_to_bf16(.infinity), 0x7F80)
        XCTAssertEqual(ck_f32_to_bf16(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie -> even
        XCTAssertEqual(ck_f32_to_bf16(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie -> even
        XCTAssertEqual(ck_f32_to_bf16(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(ck_f32_to_bf16(Float(bitPattern: 0x7F7F_FFFF)), 0x7F80)  // overflow -> inf
        XCTAssertEqual(ck_f32_to_bf16(Float(bitPattern: 0x0000_8001)), 0x0001)  // subnormal
        let nan = ck_f32_to_bf16(Float(bitPattern: 0x7F80_0001))  // signalling nan with low payload
        XCTAssertTrue(ck_bf16_to_f32(nan).isNaN)
    }
}
