import CKernels
import XCTest

/// ck_matmul_f32act: packed weights times f32 activations used as they are. It must equal the
/// f64 reference to f32 rounding (no int8 activation error), on every ISA and row split.
final class F32ActivationMatmulTests: XCTestCase {
    func testEqualsTheReferenceOnEveryIsa() {
        for t in allTypes {
            let shapes = isQuant(t) ? [(37, 64), (5, 32), (64, 160)] : [(37, 35), (5, 8)]
            for (si, (rows, cols)) in shapes.enumerated() {
                for n in [1, 2, 3, 5, 9] {
                    let c = MatmulCase(t, rows: rows, cols: cols, n: n, seed: UInt64(500 + si * 10 + n))
                    let ldy = rows + 3
                    let ref = valid(c.reference(ldy: ldy), n: n, rows: rows, ldy: ldy)
                    for isa in availableIsas {
                        let name = "\(typeName(t)) \(rows)x\(cols) n=\(n) \(String(cString: ck_isa_name(isa)))"
                        withIsa(isa) {
                            for threads in [1, 3] {
                                let y = matmulF32Activations(c, ranges: splitRows(rows, granule: Int(ck_row_granule(t)), threads: threads), ldy: ldy)
                                for j in 0..<n { for r in rows..<ldy { XCTAssertEqual(y[j * ldy + r], 12345, name) } }
                                XCTAssertLessThan(relError(valid(y, n: n, rows: rows, ldy: ldy), ref), 1e-5, name)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The point of the kernel: int8 activations carry ~1e-2 relative error; f32 ones do not.
    func testIsFarMoreExactThanInt8Activations() {
        let c = MatmulCase(CK_Q4_1, rows: 64, cols: 256, n: 4, seed: 77)
        let ref = valid(c.reference(ldy: 64), n: 4, rows: 64, ldy: 64)
        let f32 = relError(valid(matmulF32Activations(c, ranges: [(0, 64)], ldy: 64), n: 4, rows: 64, ldy: 64), ref)
        let int8 = relError(valid(c.run(ranges: [(0, 64)], ldy: 64), n: 4, rows: 64, ldy: 64), ref)
        XCTAssertLessThan(f32 * 100, int8, "f32 activations \(f32), int8 activations \(int8)")
    }
}
