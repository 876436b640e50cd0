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

    static let blockSize = 32

    /// `values` as a file of this precision gives them back.
    public func rounded(_ values: [Float]) -> [Float] {
        switch self {
        case .f32: return values
        case .f16: return values.map { Float(Float16($0)) }
        case .q8:
            let (q, scales) = Self.quantize(values)
            return Self.dequantize(q, scales: scales)
        }
    }

    /// The tensors that store `values` under `name`.
    func tensors(_ values: [Float], name: String) -> [String: SafetensorsFile.Tensor] {
        switch self {
        case .f32: return [name: .init(floats: values, shape: [values.count])]
        case .f16: return [name: .init(halfPrecision: values, shape: [values.count])]
        case .q8:
            let (q, scales) = Self.quantize(values)
            return [name + ".q8": .init(bytes: q, shape: [q.count]),
                    name + ".q8_scale": .init(halfPrecision: scales, shape: [scales.count])]
        }
    }

    /// The values stored under `name` in any precision; nil when absent or inconsistent.
    static func values(named name: String, in file: SafetensorsFile) -> [Float]? {
        if let floats = file.tensors[name]?.floats { return floats }
        guard let q = file.tensors[name + ".q8"]?.bytes, let scales = file.tensors[name + ".q8_scale"]?.floats,
              scales.count == (q.count + blockSize - 1) / blockSize else { return nil }
        return dequantize(q, scales: scales)
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
}
