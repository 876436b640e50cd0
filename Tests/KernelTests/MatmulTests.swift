import CKernels
import XCTest

/// Packed weights + activations for one (type, shape), with helpers to run ck_matmul.
struct MatmulCase {
    let t: ck_type
    let rows: Int, cols: Int
    let gguf: [UInt8]
    let x: [Float]
    let n: Int

    init(_ t: ck_type, rows: Int, cols: Int, n: Int, seed: UInt64) {
        var rng = Rng(seed)
        self.t = t; self.rows = rows; self.cols = cols; self.n = n
        let w = (0..<(rows * cols)).map { _ in rng.weight() }
        gguf = quantizeMatrix(t, w, rows: rows, cols: cols)
        x = (0..<(n * cols)).map { _ in rng.activation() }
    }

    init(copying o: MatmulCase, gguf: [UInt8]) {
        t = o.t; rows = o.rows; cols = o.cols; n = o.n; x = o.x
        self.gguf = gguf
    }

    func reference(ldy: Int) -> [Float] {
        var y = [Float](repeating: 0, count: n * ldy)
        gguf.withUnsafeBytes { w in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    ck_matmul_ref(t, w.baseAddress!, Int64(rows), Int64(cols), xp.baseAddress!, Int64(n),
                                  yp.baseAddress!, Int64(ldy))
                }
            }
        }
        return y
    }

    /// Runs ck_matmul (or the emulated VNNI kernel) over the given row ranges, as threads would,
    /// into a sentinel-filled output.
    func run(ranges: [(Int, Int)], ldy: Int, emulatedVnni: Bool = false) -> [Float] {
        var packed = [UInt8](repeating: 0xA5, count: ck_packed_size(t, Int64(rows), Int64(cols)))
        gguf.withUnsafeBytes { src in
            packed.withUnsafeMutableBytes { dst in ck_pack(t, src.baseAddress!, Int64(rows), Int64(cols), dst.baseAddress!) }
        }
        var act = [UInt8](repeating: 0x5A, count: ck_act_row_bytes(t, Int64(cols)) * n)
        x.withUnsafeBufferPointer { xp in
            act.withUnsafeMutableBytes { ap in ck_convert_act(t, xp.baseAddress!, Int64(n), Int64(cols), ap.baseAddress!) }
        }
        var y = [Float](repeating: 12345, count: n * ldy)
        packed.withUnsafeBytes { pp in
            act.withUnsafeBytes { ap in
                y.withUnsafeMutableBufferPointer { yp in
                    for (r0, r1) in ranges {
                        if emulatedVnni {
                            _ = ck_matmul_vnni_emulated(t, pp.baseAddress!, Int64(rows), Int64(cols), ap.baseAddress!,
                                                        Int64(n), yp.baseAddress!, Int64(ldy), Int64(r0), Int64(r1))
                        } else {
                            ck_matmul(t, pp.baseAddress!, Int64(rows), Int64(cols), ap.baseAddress!, Int64(n),
                                      yp.baseAddress!, Int64(ldy), Int64(r0), Int64(r1))
                        }
                    }
                }
            }
        }
        return y
    }
}

/// The rows [0, rows) of each of the n output rows.
func valid(_ y: [Float], n: Int, rows: Int, ldy: Int) -> [Float] {
    (0..<n).flatMap { j in y[(j * ldy)..<(j * ldy + rows)] }
}

final class MatmulTests: XCTestCase {
    static let ns = [1, 2, 3, 7, 16, 33]

    func shapes(_ t: ck_type) -> [(Int, Int)] {
        isQuant(t) ? [(37, 64), (5, 32), (64, 160), (19, 96)] : [(37, 35), (5, 8), (21, 64), (3, 1)]
    }

    func check(_ t: ck_type) {
        let best = ck_isa_best()
        for (si, (rows, cols)) in shapes(t).enumerated() {
            for n in Self.ns {
                let c = MatmulCase(t, rows: rows, cols: cols, n: n, seed: UInt64(si * 100 + n))
                let ldy = rows + 3
                let ref = valid(c.reference(ldy: ldy), n: n, rows: rows, ldy: ldy)
                let g = Int(ck_row_granule(t))
                var scalarOut: [Float]? = nil
                for isa in availableIsas {
                    let name = "\(typeName(t)) \(rows)x\(cols) n=\(n) \(String(cString: ck_isa_name(isa)))"
                    withIsa(isa) {
                        var first: [Float]? = nil
                        for threads in [1, 2, 3] {
                            let y = c.run(ranges: splitRows(rows, granule: g, threads: threads), ldy: ldy)
                            // padding columns between rows and ldy are never written
                            for j in 0..<n { for r in rows..<ldy { XCTAssertEqual(y[j * ldy + r], 12345, name) } }
                            let v = valid(y, n: n, rows: rows, ldy: ldy)
                            let err = relError(v, ref)
                            XCTAssertLessThan(err, isQuant(t) ? 1e-2 : 1e-5, "\(name) threads=\(threads)")
                            // splitting rows must not change any value
                            if let f = first { XCTAssertEqual(v, f, "\(name) threads=\(threads)") } else { first = v }
                        }
                        if isa == CK_ISA_SCALAR { scalarOut = first }
                        else if let s = scalarOut {
                            // same quantized-activation math as the scalar path, up to summation order
                            XCTAssertLessThan(relError(first!, s), 1e-5, "\(name) vs scalar")
                        }
                    }
                }
                // the AVX-512 VNNI kernel's logic, runnable here with vpdpbusd emulated (needs AVX2)
                if isQuant(t), best.rawValue >= CK_ISA_AVX2.rawValue, let s = scalarOut {
                    let name = "\(typeName(t)) \(rows)x\(cols) n=\(n) emulated-vnni"
                    let y = c.run(ranges: splitRows(rows, granule: g, threads: 2), ldy: ldy, emulatedVnni: true)
                    for j in 0..<n { for r in rows..<ldy { XCTAssertEqual(y[j * ldy + r], 12345, name) } }
                    XCTAssertLessThan(relError(valid(y, n: n, rows: rows, ldy: ldy), s), 1e-5, name)
                }
            }
        }
    }

    func testF32() { check(CK_F32) }
    func testF16() { check(CK_F16) }
    func testBF16() { check(CK_BF16) }
    func testQ4_0() { check(CK_Q4_0) }
    func testQ4_1() { check(CK_Q4_1) }
    func testQ8_0() { check(CK_Q8_0) }

    /// Q8_0 files may hold q = -128 (our quantizer never writes it): the sign / offset tricks of the
    /// SIMD paths must still be exact. Random raw quants over the full int8 range.
    func testQ8_0FullInt8Range() {
        let rows = 21, cols = 128, n = 5, ldy = 21
        var c = MatmulCase(CK_Q8_0, rows: rows, cols: cols, n: n, seed: 11)
        var rng = Rng(12)
        var g = c.gguf
        for b in 0..<(rows * cols / 32) {
            for i in 2..<34 { g[b * 34 + i] = UInt8(truncatingIfNeeded: rng.next()) }
            g[b * 34 + 2] = 0x80  // -128 in every block
        }
        c = MatmulCase(copying: c, gguf: g)
        let ref = valid(c.reference(ldy: ldy), n: n, rows: rows, ldy: ldy)
        let scalar = withIsa(CK_ISA_SCALAR) { valid(c.run(ranges: [(0, rows)], ldy: ldy), n: n, rows: rows, ldy: ldy) }
        XCTAssertLessThan(relError(scalar, ref), 1e-2)
        for isa in availableIsas {
            let y = withIsa(isa) { valid(c.run(ranges: [(0, rows)], ldy: ldy), n: n, rows: rows, ldy: ldy) }
            XCTAssertLessThan(relError(y, scalar), 1e-5, String(cString: ck_isa_name(isa)))
        }
        if ck_isa_best().rawValue >= CK_ISA_AVX2.rawValue {
            let y = valid(c.run(ranges: [(0, rows)], ldy: ldy, emulatedVnni: true), n: n, rows: rows, ldy: ldy)
            XCTAssertLessThan(relError(y, scalar), 1e-5, "emulated-vnni")
        }
    }

    /// A range ending inside a panel (r1 = rows) and a single-panel range write only their rows.
    func testPartialRanges() {
        for t in allTypes {
            let rows = 29, cols = 64, n = 3, ldy = 29
            let c = MatmulCase(t, rows: rows, cols: cols, n: n, seed: 7)
            let full = c.run(ranges: [(0, rows)], ldy: ldy)
            let g = Int(ck_row_granule(t))
            let r0 = (rows / 2 / g) * g
            let part = c.run(ranges: [(r0, rows)], ldy: ldy)
            for j in 0..<n {
                for r in 0..<rows {
                    if r < r0 { XCTAssertEqual(part[j * ldy + r], 12345, typeName(t)) }
                    else { XCTAssertEqual(part[j * ldy + r], full[j * ldy + r], typeName(t)) }
                }
            }
        }
    }

    /// Activation conversion is identical on every ISA (the int8 blocks feed exact integer math).
    func testActivationConversionSameOnAllIsas() {
        var rng = Rng(9)
        let cols = 32 * 24, n = 5
        var x = (0..<(n * cols)).map { _ in rng.activation() }
        for j in 0..<32 { x[j] = 0 }
        for j in 32..<64 { x[j] = Float(j % 4) - 1.5 }  // exact .5 ties
        for t in [CK_Q4_0, CK_Q4_1, CK_Q8_0, CK_F32] {
            var outs: [[UInt8]] = []
            for isa in availableIsas {
                var act = [UInt8](repeating: 0, count: ck_act_row_bytes(t, Int64(cols)) * n)
                withIsa(isa) {
                    x.withUnsafeBufferPointer { xp in
                        act.withUnsafeMutableBytes { ap in ck_convert_act(t, xp.baseAddress!, Int64(n), Int64(cols), ap.baseAddress!) }
                    }
                }
                outs.append(act)
            }
            for o in outs.dropFirst() { XCTAssertEqual(o, outs[0], typeName(t)) }
        }
    }
}
