import CKernels
import LLM
import TestSupport

/// The kernel tests' short name for the shared seeded generator.
typealias Rng = SplitMix64

let allTypes: [ck_type] = [CK_F32, CK_F16, CK_BF16, CK_Q4_0, CK_Q4_1, CK_Q8_0]
let quantTypes: Set<UInt32> = [CK_Q4_0.rawValue, CK_Q4_1.rawValue, CK_Q8_0.rawValue]
func isQuant(_ t: ck_type) -> Bool { quantTypes.contains(t.rawValue) }
func typeName(_ t: ck_type) -> String {
    switch t.rawValue {
    case CK_F32.rawValue: return "F32"
    case CK_F16.rawValue: return "F16"
    case CK_BF16.rawValue: return "BF16"
    case CK_Q4_0.rawValue: return "Q4_0"
    case CK_Q4_1.rawValue: return "Q4_1"
    case CK_Q8_0.rawValue: return "Q8_0"
    default: return "type\(t.rawValue)"
    }
}

/// Every ISA path this CPU can run, scalar first.
var availableIsas: [ck_isa] {
    (0...ck_isa_best().rawValue).map { ck_isa(rawValue: $0) }
}

/// Runs `body` with the ISA set, restoring the best path afterwards.
func withIsa<T>(_ isa: ck_isa, _ body: () throws -> T) rethrows -> T {
    ck_isa_set(isa)
    defer { ck_isa_set(ck_isa_best()) }
    return try body()
}

/// Quantizes a rows x cols f32 matrix into GGUF layout with the reference quantizer.
func quantizeMatrix(_ t: ck_type, _ w: [Float], rows: Int, cols: Int) -> [UInt8] {
    let rb = ck_row_bytes(t, Int64(cols))
    var out = [UInt8](repeating: 0, count: rb * rows)
    w.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBytes { dst in
            for r in 0..<rows {
                ck_quantize_row_ref(t, src.baseAddress! + r * cols, dst.baseAddress! + r * rb, Int64(cols))
            }
        }
    }
    return out
}

func dequantizeRow(_ t: ck_type, _ bytes: [UInt8], count: Int, fast: Bool = false) -> [Float] {
    var out = [Float](repeating: .nan, count: count)
    bytes.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dst in
            if fast {
                ck_dequantize_row(t, src.baseAddress!, dst.baseAddress!, Int64(count))
            } else {
                ck_dequantize_row_ref(t, src.baseAddress!, dst.baseAddress!, Int64(count))
            }
        }
    }
    return out
}

/// ||a - b|| / ||b||
func relError(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    return den == 0 ? num.squareRoot() : (num / den).squareRoot()
}

/// Row ranges as a pool of `threads` workers would split them (starts on granule multiples).
func splitRows(_ rows: Int, granule: Int, threads: Int) -> [(Int, Int)] {
    let units = (rows + granule - 1) / granule
    let per = max(1, (units + threads - 1) / threads) * granule
    var out: [(Int, Int)] = []
    var r = 0
    while r < rows {
        out.append((r, min(rows, r + per)))
        r += per
    }
    return out
}

/// ck_matmul_f32act over `ranges` of output rows (packed first), into rows of stride `ldy`.
func matmulF32Activations(_ c: MatmulCase, ranges: [(Int, Int)], ldy: Int) -> [Float] {
    var packed = [UInt8](repeating: 0xA5, count: ck_packed_size(c.t, Int64(c.rows), Int64(c.cols)))
    c.gguf.withUnsafeBytes { src in
        packed.withUnsafeMutableBytes { ck_pack(c.t, src.baseAddress!, Int64(c.rows), Int64(c.cols), $0.baseAddress!) }
    }
    var y = [Float](repeating: 12345, count: c.n * ldy)
    packed.withUnsafeBytes { pp in
        c.x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for (r0, r1) in ranges {
                    ck_matmul_f32act(c.t, pp.baseAddress!, Int64(c.rows), Int64(c.cols), xp.baseAddress!,
                                     Int64(c.n), yp.baseAddress!, Int64(ldy), Int64(r0), Int64(r1))
                }
            }
        }
    }
    return y
}
