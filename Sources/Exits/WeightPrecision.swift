import CKernels
import LLM

/// How a calibration file stores trained exit blocks' weights. The calibrator rounds a trained block
/// to this precision before it picks thresholds, so the file's curves describe the weights it holds.
public enum WeightPrecision: String, CaseIterable, Sendable {
    /// As trained.
    case f32
    /// Half the size.
    case f16
    /// ggml's Q8_0 idea: int8 values in blocks of 32 with one f16 scale per block, about a quarter of
    /// f32. A layer block packs its matrices to Q8_0 at load anyway, and these blocks line up with
    /// the packed rows, so the packing reproduces the stored values.
    case q8
    /// ggml's Q5_0 blocks (5-bit values, one f16 scale per 32), about a sixth of f32, so a two-layer
    /// block of the default model fits the 5 MB a shipped calibration may take. A layer block runs
    /// packed to Q5_0, which reproduces the stored values. The values a block names as kept exact
    /// (its norms: a few hundred values whose 5-bit steps would move every row) are stored as f32.
    case q5
    /// ggml's Q4_0 blocks (4-bit values, one f16 scale per 32), 4.5 bits a weight: a layer block reads
    /// about as many bytes as one of the edge's Q4_1 layers. Norms are kept f32, as for q5.
    case q4

    static let blockSize = 32

    /// The engine format a layer block stored at this precision is packed into at load: Q5_0 for q5 and
    /// Q4_0 for q4 (the stored values exactly), else Q8_0 (exactly for q8; the f32 block's decisions for
    /// the rest, `PackedLayerBlockTests`).
    public var packingFormat: GGMLType { ggmlBlocks ?? .q8_0 }

    /// The ggml block format the values are stored in, for the precisions stored that way.
    private var ggmlBlocks: GGMLType? {
        switch self {
        case .q5: .q5_0
        case .q4: .q4_0
        case .f32, .f16, .q8: nil
        }
    }

    /// The name suffix of the blocks' tensor ("q5_0").
    private static func blocksSuffix(_ type: GGMLType) -> String { "." + type.lowercasedName }

    /// `values` as a file of this precision gives them back; the values in `exact` are not rounded
    /// by q5 or q4.
    public func rounded(_ values: [Float], keeping exact: [Range<Int>] = []) -> [Float] {
        switch self {
        case .f32: return values
        case .f16: return values.map { Float(Float16($0)) }
        case .q8:
            let (q, scales) = Self.quantize(values)
            return Self.dequantize(q, scales: scales)
        case .q5, .q4:
            let type = ggmlBlocks!
            return Self.restoring(exact, to: exact.flatMap { values[$0] },
                                  in: Self.dequantize(Self.quantize(values, as: type), as: type, count: values.count))
        }
    }

    /// The tensors that store `values` under `name`.
    func tensors(_ values: [Float], name: String, keeping exact: [Range<Int>] = []) -> [String: SafetensorsFile.Tensor] {
        switch self {
        case .f32: return [name: .init(floats: values, shape: [values.count])]
        case .f16: return [name: .init(halfPrecision: values, shape: [values.count])]
        case .q8:
            let (q, scales) = Self.quantize(values)
            return [name + ".q8": .init(bytes: q, shape: [q.count]),
                    name + ".q8_scale": .init(halfPrecision: scales, shape: [scales.count])]
        case .q5, .q4:
            let type = ggmlBlocks!
            let blocks = Self.quantize(values, as: type)
            let kept = exact.flatMap { values[$0] }
            return [name + Self.blocksSuffix(type): .init(bytes: blocks.map { Int8(bitPattern: $0) }, shape: [blocks.count]),
                    name + ".count": .init(ints: [Int32(values.count)], shape: [1]),
                    name + ".exact": .init(floats: kept, shape: [kept.count]),
                    name + ".exact_ranges": .init(ints: exact.flatMap { [Int32($0.lowerBound), Int32($0.upperBound)] },
                                                  shape: [exact.count, 2])]
        }
    }

    /// The precision of the values stored under `name`; nil when there are none.
    static func stored(named name: String, in file: SafetensorsFile) -> WeightPrecision? {
        if let tensor = file.tensors[name] { return tensor.dtype == .f16 ? .f16 : .f32 }
        if file.tensors[name + ".q8"] != nil { return .q8 }
        return [WeightPrecision.q5, .q4].first { file.tensors[name + blocksSuffix($0.ggmlBlocks!)] != nil }
    }

    /// The values stored under `name` in any precision; nil when absent or inconsistent.
    static func values(named name: String, in file: SafetensorsFile) -> [Float]? {
        if let floats = file.tensors[name]?.floats { return floats }
        if let q = file.tensors[name + ".q8"]?.bytes {
            guard let scales = file.tensors[name + ".q8_scale"]?.floats,
                  scales.count == (q.count + blockSize - 1) / blockSize else { return nil }
            return dequantize(q, scales: scales)
        }
        guard let type = stored(named: name, in: file)?.ggmlBlocks,
              let blocks = file.tensors[name + blocksSuffix(type)]?.bytes, let stored = file.tensors[name + ".count"]?.ints, stored.count == 1,
              case let count = Int(stored[0]), count >= 0, blocks.count == type.blockBytes * ((count + blockSize - 1) / blockSize),
              let kept = file.tensors[name + ".exact"]?.floats, let bounds = file.tensors[name + ".exact_ranges"]?.ints,
              bounds.count % 2 == 0 else { return nil }
        var exact: [Range<Int>] = []
        for i in stride(from: 0, to: bounds.count, by: 2) {
            let (lower, upper) = (Int(bounds[i]), Int(bounds[i + 1]))
            guard 0 <= lower, lower <= upper, upper <= count, lower >= (exact.last?.upperBound ?? 0) else { return nil }
            exact.append(lower..<upper)
        }
        guard kept.count == exact.reduce(0, { $0 + $1.count }) else { return nil }
        return restoring(exact, to: kept, in: dequantize(blocks.map { UInt8(bitPattern: $0) }, as: type, count: count))
    }

    private static func quantize(_ values: [Float]) -> (q: [Int8], scales: [Float]) {
        var q = [Int8](repeating: 0, count: values.count)
        var scales: [Float] = []
        for start in stride(from: 0, to: values.count, by: blockSize) {
            let block = values[start..<min(start + blockSize, values.count)]
            let scale = Float(Float16(block.reduce(0) { max($0, abs($1)) } / 127))
            scales.append(scale)
            guard scale > 0 else { continue }
            for i in block.indices { q[i] = Int8(max(-127, min(127, (block[i] / scale).rounded()))) }
        }
        return (q, scales)
    }

    private static func dequantize(_ q: [Int8], scales: [Float]) -> [Float] {
        q.indices.map { Float(q[$0]) * scales[$0 / blockSize] }
    }

    /// `type` blocks of `values`, zero-padded to whole blocks, by the engine's reference quantizer.
    private static func quantize(_ values: [Float], as type: GGMLType) -> [UInt8] {
        let blocks = (values.count + blockSize - 1) / blockSize
        let padded = values + [Float](repeating: 0, count: blocks * blockSize - values.count)
        var out = [UInt8](repeating: 0, count: blocks * type.blockBytes)
        ck_quantize_row_ref(ck_type(rawValue: type.rawValue), padded, &out, Int64(padded.count))
        return out
    }

    private static func dequantize(_ blocks: [UInt8], as type: GGMLType, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: blocks.count / type.blockBytes * blockSize)
        ck_dequantize_row_ref(ck_type(rawValue: type.rawValue), blocks, &out, Int64(out.count))
        return Array(out.prefix(count))
    }

    /// `rounded` with the ranges `exact` set back to `kept` (their values, back to back).
    private static func restoring(_ exact: [Range<Int>], to kept: [Float], in rounded: [Float]) -> [Float] {
        var values = rounded
        var next = kept.startIndex
        for range in exact {
            values.replaceSubrange(range, with: kept[next..<next + range.count])
            next += range.count
        }
        return values
    }
}
