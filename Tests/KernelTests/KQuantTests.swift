import CKernels
import XCTest

/// Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K: the reference dequantizers on hand-made blocks (values worked
/// out by hand from ggml's layouts), and every product path against the scalar reference twin on
/// random data and on random raw blocks (every bit pattern of quants and packed scales).
final class KQuantTests: XCTestCase {
    static let types: [ck_type] = [CK_Q5_0, CK_Q5_1, CK_Q2_K, CK_Q3_K, CK_Q4_K, CK_Q5_K, CK_Q6_K]
    static let kQuants: [ck_type] = [CK_Q2_K, CK_Q3_K, CK_Q4_K, CK_Q5_K, CK_Q6_K]

    static func name(_ t: ck_type) -> String {
        switch t.rawValue {
        case CK_Q5_0.rawValue: return "Q5_0"
        case CK_Q5_1.rawValue: return "Q5_1"
        case CK_Q2_K.rawValue: return "Q2_K"
        case CK_Q3_K.rawValue: return "Q3_K"
        case CK_Q4_K.rawValue: return "Q4_K"
        case CK_Q5_K.rawValue: return "Q5_K"
        case CK_Q6_K.rawValue: return "Q6_K"
        default: return typeName(t)
        }
    }

    private func f16(_ v: Float) -> [UInt8] {
        let h = ck_f32_to_f16(v)
        return [UInt8(h & 0xff), UInt8(h >> 8)]
    }

    /// Dequantizes one block with the reference and checks the listed elements exactly.
    private func expect(_ t: ck_type, _ block: [UInt8], _ values: [Int: Float], file: StaticString = #filePath, line: UInt = #line) {
        let n = Int(ck_block_elements(t))
        XCTAssertEqual(block.count, ck_row_bytes(t, Int64(n)), "block size", file: file, line: line)
        let y = dequantizeRow(t, block, count: n)
        for (e, v) in values.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(y[e], v, "\(Self.name(t)) element \(e)", file: file, line: line)
        }
        XCTAssertEqual(dequantizeRow(t, block, count: n, fast: true), y, "\(Self.name(t)) fast dequantization")
    }

    // qh bits 0 and 31; qs[0] = 0x21 (element 0 low nibble 1, element 16 high nibble 2),
    // qs[15] = 0xF3 (element 15: 3, element 31: 15); every other nibble 8.
    private var q5Quants: [UInt8] {
        var qs = [UInt8](repeating: 0x88, count: 16)
        qs[0] = 0x21
        qs[15] = 0xF3
        return [0x01, 0x00, 0x00, 0x80] + qs
    }

    func testQ5_0HandBlock() {
        // x = (q - 16) * 0.5: q0 = 1 + 16, q16 = 2, q15 = 3, q31 = 15 + 16, others 8
        expect(CK_Q5_0, f16(0.5) + q5Quants, [0: 0.5, 16: -7, 15: -6.5, 31: 7.5, 1: -4, 30: -4])
    }

    func testQ5_1HandBlock() {
        // x = q * 0.25 - 1
        expect(CK_Q5_1, f16(0.25) + f16(-1) + q5Quants, [0: 3.25, 16: -0.5, 15: -0.25, 31: 6.75, 1: 1, 30: 1])
    }

    // sc = 1, 2, 3, 4, 5, 6, 7, 63 and m = 0, 1, 2, 3, 4, 5, 6, 33, packed as ggml does (the upper
    // two bits of sc/m 4..7 in the top bits of bytes 0..7, their low nibbles in bytes 8..11).
    private let kScales: [UInt8] = [1, 2, 3, 4 | 3 << 6, 0, 1, 2, 3 | 2 << 6, 5 | 4 << 4, 6 | 5 << 4, 7 | 6 << 4, 15 | 1 << 4]

    func testQ2_KHandBlock() {
        // scales[g] = sc | m << 4: g 0: (1, 2), 1: (15, 3), 2: (5, 0), 4: (0, 1), 6: (11, 10), 15: (7, 15), others 0
        var scales = [UInt8](repeating: 0, count: 16)
        scales[0] = 0x21; scales[1] = 0x3F; scales[2] = 0x05; scales[4] = 0x10; scales[6] = 0xAB; scales[15] = 0xF7
        var qs = [UInt8](repeating: 0, count: 64)
        qs[0] = 0xE7   // bits 2j of qs[l]: element 0: 3, 32: 1, 64: 2, 96: 3
        qs[16] = 0x02  // element 16: 2 (48, 80, 112: 0)
        qs[63] = 0xC0  // element 255 (128 + 96 + 31): 3; element 159: 0
        // x = 0.5 sc q - 0.25 m, sub-block e / 16
        expect(CK_Q2_K, scales + qs + f16(0.5) + f16(0.25),
               [0: 1, 1: -0.5, 16: 14.25, 32: 2.5, 48: 0, 64: -0.25, 96: 14, 240: -3.75, 255: 6.75])
    }

    func testQ3_KHandBlock() {
        // 6-bit scales u (x uses u - 32): g 0: 33, 1: 0, 2: 63, 6: 20, 15: 45, others 32. Low nibbles
        // of u 0..7 in the low nibbles of bytes 0..7, of u 8..15 in their high nibbles; the top two bits
        // of u g at bits 2 (g / 4) of byte 8 + g % 4.
        let scales: [UInt8] = [0x01, 0x00, 0x0F, 0x00, 0x00, 0x00, 0x04, 0xD0, 0xAA, 0xA8, 0xA7, 0xAA]
        var hmask = [UInt8](repeating: 0, count: 32), qs = [UInt8](repeating: 0, count: 64)
        qs[0] = 0x4E     // low bits 2j of qs[l]: element 0: 2, 32: 3, 64: 0, 96: 1
        hmask[0] = 0x09  // third bits (bit j of hmask[l]): element 0 and 96 set: q = low, else q = low - 4
        qs[63] = 0xC0    // element 255: low bits 3
        hmask[31] = 0x80 // element 255: third bit set
        // x = 0.5 (u - 32) q: q0 = 2, q32 = -1, q96 = 1, q16 = q1 = q240 = -4, q255 = 3
        expect(CK_Q3_K, hmask + qs + scales + f16(0.5),
               [0: 1, 1: -2, 16: 64, 32: -15.5, 64: 0, 96: -6, 240: -26, 255: 19.5])
    }

    func testQ4_KHandBlock() {
        var qs = [UInt8](repeating: 0, count: 128)
        qs[0] = 0x3A    // element 0 (sub-block 0): 10; element 32 (sub-block 1): 3
        qs[127] = 0xF5  // element 223 (sub-block 6): 5; element 255 (sub-block 7): 15
        // x = 0.5 sc q - 0.25 m
        expect(CK_Q4_K, f16(0.5) + f16(0.25) + kScales + qs,
               [0: 5, 32: 2.75, 223: 16, 255: 464.25, 1: 0, 100: -0.75])
    }

    func testQ5_KHandBlock() {
        var qs = [UInt8](repeating: 0, count: 128)
        qs[0] = 0x3A
        qs[127] = 0xF5
        var qh = [UInt8](repeating: 0, count: 32)
        qh[0] = 0x01   // fifth bit of element 0 (sub-block 0): 26
        qh[31] = 0x80  // fifth bit of element 255 (sub-block 7): 31
        expect(CK_Q5_K, f16(0.5) + f16(0.25) + kScales + qh + qs,
               [0: 13, 32: 2.75, 223: 16, 255: 968.25, 1: 0, 100: -0.75])
    }

    func testQ6_KHandBlock() {
        var ql = [UInt8](repeating: 0, count: 128), qh = [UInt8](repeating: 0, count: 64)
        ql[0] = 0x21    // element 0: low 4 bits 1; element 64: 2
        qh[0] = 0xC9    // top bits: element 0: 1, element 32: 2, element 64: 0, element 96: 3
        ql[127] = 0xF0  // element 191: 0; element 255: 15
        qh[63] = 0x40   // element 255 top bits 1
        let scales = (0..<16).map { UInt8(bitPattern: Int8($0 - 8)) }
        // x = 0.5 sc[e / 16] (q - 32): q0 = 17, q32 = 32, q64 = 2, q96 = 48, q191 = 0, q255 = 31, q1 = 0
        expect(CK_Q6_K, ql + qh + scales + f16(0.5),
               [0: 60, 32: 0, 64: 60, 96: -16, 191: -48, 255: -3.5, 1: 128])
    }

    /// Random raw blocks: every byte random except the f16 scales (kept small and finite).
    static func randomBlocks(_ t: ck_type, rows: Int, cols: Int, rng: inout Rng) -> [UInt8] {
        let bb = ck_row_bytes(t, ck_block_elements(t))
        var bytes = (0..<(ck_row_bytes(t, Int64(cols)) * rows)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func scale(_ rng: inout Rng) -> [UInt8] {
            let h = ck_f32_to_f16(0.001 + 0.01 * (rng.uniform() + 1))
            return [UInt8(h & 0xff), UInt8(h >> 8)]
        }
        for o in stride(from: 0, to: bytes.count, by: bb) {
            let offsets: [Int]
            switch t.rawValue {
            case CK_Q5_0.rawValue: offsets = [0]
            case CK_Q2_K.rawValue: offsets = [80, 82]
            case CK_Q3_K.rawValue: offsets = [108]
            case CK_Q6_K.rawValue: offsets = [208]
            default: offsets = [0, 2]
            }
            for f in offsets { bytes.replaceSubrange((o + f)..<(o + f + 2), with: scale(&rng)) }
        }
        return bytes
    }

    private func shapes(_ t: ck_type) -> [(Int, Int)] {
        let k: [(Int, Int)] = [(37, 256), (5, 512), (19, 768), (8, 1024)]
        return ck_block_elements(t) == 32 ? k + [(37, 64), (9, 96)] : k
    }

    /// Every ISA (and the emulated VNNI kernel) equals the scalar twin up to float summation order;
    /// the scalar twin equals the f64 reference up to int8 activation rounding; f32 activations equal
    /// the reference to f32 rounding; row splits change nothing and write only their rows.
    private func check(_ t: ck_type) {
        let name = Self.name(t)
        XCTAssertEqual(ck_type_supported(Int32(t.rawValue)), 1, name)
        for (si, (rows, cols)) in shapes(t).enumerated() {
            for raw in [false, true] {
                for n in [1, 2, 3, 5, 9] {
                    var c = MatmulCase(t, rows: rows, cols: cols, n: n, seed: UInt64(1000 * si + n))
                    if raw {
                        var rng = Rng(UInt64(77 + 1000 * si + n))
                        c = MatmulCase(copying: c, gguf: Self.randomBlocks(t, rows: rows, cols: cols, rng: &rng))
                    }
                    let ldy = rows + 3
                    let ref = valid(c.reference(ldy: ldy), n: n, rows: rows, ldy: ldy)
                    let g = Int(ck_row_granule(t))
                    let label = "\(name) \(raw ? "raw" : "quantized") \(rows)x\(cols) n=\(n)"
                    var scalar: [Float]? = nil
                    for isa in availableIsas {
                        let tag = "\(label) \(String(cString: ck_isa_name(isa)))"
                        withIsa(isa) {
                            var first: [Float]? = nil
                            for threads in [1, 2, 3] {
                                let y = c.run(ranges: splitRows(rows, granule: g, threads: threads), ldy: ldy)
                                for j in 0..<n { for r in rows..<ldy { XCTAssertEqual(y[j * ldy + r], 12345, tag) } }
                                let v = valid(y, n: n, rows: rows, ldy: ldy)
                                if let f = first { XCTAssertEqual(v, f, "\(tag) threads=\(threads)") } else { first = v }
                            }
                            if let s = scalar {
                                XCTAssertLessThan(relError(first!, s), 1e-5, "\(tag) vs scalar")
                            } else {
                                scalar = first
                                XCTAssertLessThan(relError(first!, ref), raw ? 3e-2 : 1e-2, "\(tag) vs reference")
                            }
                            let f = matmulF32Activations(c, ranges: splitRows(rows, granule: g, threads: 2), ldy: ldy)
                            XCTAssertLessThan(relError(valid(f, n: n, rows: rows, ldy: ldy), ref), 1e-5, "\(tag) f32 activations")
                        }
                    }
                    if ck_isa_best().rawValue >= CK_ISA_AVX2.rawValue, let s = scalar {
                        let y = c.run(ranges: splitRows(rows, granule: g, threads: 2), ldy: ldy, emulatedVnni: true)
                        for j in 0..<n { for r in rows..<ldy { XCTAssertEqual(y[j * ldy + r], 12345, label) } }
                        XCTAssertLessThan(relError(valid(y, n: n, rows: rows, ldy: ldy), s), 1e-5, "\(label) emulated-vnni")
                    }
                }
            }
        }
    }

    func testQ5_0Products() { check(CK_Q5_0) }
    func testQ5_1Products() { check(CK_Q5_1) }
    func testQ2_KProducts() { check(CK_Q2_K) }
    func testQ3_KProducts() { check(CK_Q3_K) }
    func testQ4_KProducts() { check(CK_Q4_K) }
    func testQ5_KProducts() { check(CK_Q5_K) }
    func testQ6_KProducts() { check(CK_Q6_K) }

    /// Packing loses nothing: f32 activations that pick one column give exactly the reference
    /// dequantization of that column, for every row of every panel (K-quants repack all their bits).
    func testPackedPanelsKeepEveryValue() {
        for t in Self.kQuants {
            let rows = 13, cols = 512
            var rng = Rng(31)
            let c = MatmulCase(copying: MatmulCase(t, rows: rows, cols: cols, n: 1, seed: 30),
                               gguf: Self.randomBlocks(t, rows: rows, cols: cols, rng: &rng))
            let rb = ck_row_bytes(t, Int64(cols))
            let w = (0..<rows).map { r in dequantizeRow(t, Array(c.gguf[(r * rb)..<((r + 1) * rb)]), count: cols) }
            var packed = [UInt8](repeating: 0xA5, count: ck_packed_size(t, Int64(rows), Int64(cols)))
            c.gguf.withUnsafeBytes { src in
                packed.withUnsafeMutableBytes { ck_pack(t, src.baseAddress!, Int64(rows), Int64(cols), $0.baseAddress!) }
            }
            for col in [0, 1, 31, 32, 100, 255, 256, 511] {
                var x = [Float](repeating: 0, count: cols)
                x[col] = 1
                var y = [Float](repeating: .nan, count: rows)
                packed.withUnsafeBytes { pp in
                    ck_matmul_f32act(t, pp.baseAddress!, Int64(rows), Int64(cols), x, 1, &y, Int64(rows), 0, Int64(rows))
                }
                XCTAssertEqual(y, w.map { $0[col] }, "\(Self.name(t)) column \(col)")
            }
        }
    }

    /// The test-data quantizers round-trip: the dequantized matrix is close to what was quantized
    /// (2 and 3 bits per weight lose more: uniform weights in 4 / 8 steps per sub-block of 16).
    func testQuantizeDequantizeRoundTrip() {
        var rng = Rng(5)
        let cols = 512
        let x = (0..<cols).map { _ in rng.weight() }
        let limits: [UInt32: Double] = [CK_Q5_0.rawValue: 0.08, CK_Q5_1.rawValue: 0.08, CK_Q2_K.rawValue: 0.5,
                                        CK_Q3_K.rawValue: 0.25, CK_Q4_K.rawValue: 0.15,
                                        CK_Q5_K.rawValue: 0.08, CK_Q6_K.rawValue: 0.05]
        for t in Self.types {
            let y = dequantizeRow(t, quantizeMatrix(t, x, rows: 1, cols: cols), count: cols)
            XCTAssertLessThan(relError(y, x), limits[t.rawValue]!, Self.name(t))
        }
    }

    /// K-quant activation rows (int8, scale per 256, sums per 16) are identical on every ISA, and
    /// the sums are the sums of the stored int8 values.
    func testKQuantActivationsSameOnAllIsas() {
        var rng = Rng(21)
        let cols = 256 * 3, n = 3
        var x = (0..<(n * cols)).map { _ in rng.activation() }
        for j in 0..<16 { x[j] = Float(j % 4) - 1.5 }  // exact .5 ties
        for j in 256..<512 { x[j] = 0 }                 // an all-zero super-block
        var outs: [[UInt8]] = []
        for isa in availableIsas {
            var act = [UInt8](repeating: 0xEE, count: ck_act_row_bytes(CK_Q4_K, Int64(cols)) * n)
            withIsa(isa) {
                x.withUnsafeBufferPointer { xp in
                    act.withUnsafeMutableBytes { ck_convert_act(CK_Q4_K, xp.baseAddress!, Int64(n), Int64(cols), $0.baseAddress!) }
                }
            }
            outs.append(act)
        }
        for o in outs.dropFirst() { XCTAssertEqual(o, outs[0]) }
        let rb = ck_act_row_bytes(CK_Q4_K, Int64(cols))
        outs[0].withUnsafeBytes { p in
            for j in 0..<n {
                let row = p.baseAddress! + j * rb
                let q = row.assumingMemoryBound(to: Int8.self)
                let sums = (row + cols + 4 * (cols / 256)).assumingMemoryBound(to: Int16.self)
                for g in 0..<(cols / 16) {
                    let s = (0..<16).reduce(0) { $0 + Int(q[16 * g + $1]) }
                    XCTAssertEqual(Int(sums[g]), s, "row \(j) group \(g)")
                }
            }
        }
        XCTAssertEqual(ck_act_format(CK_Q5_0), ck_act_format(CK_Q8_0), "Q5_x share the Q8_0 activation blocks")
        for t in Self.kQuants { XCTAssertEqual(ck_act_format(t), ck_act_format(CK_Q4_K), Self.name(t)) }
        XCTAssertNotEqual(ck_act_format(CK_Q4_K), ck_act_format(CK_Q8_0))
    }
}
