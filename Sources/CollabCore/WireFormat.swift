import LLM

/// How boundary hidden states are encoded on the wire. f16 is the paper's choice; q8 (blocks of
/// 32 int8 values with one f16 scale, GGUF's Q8_0 layout) halves it again.
public enum WireFormat: String, Sendable, CaseIterable, Codable {
    case f32, f16, q8

    var ggmlType: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8: return .q8_0
        }
    }

    /// Bytes for one row of `width` values (q8 needs width to be a multiple of 32).
    public func bytesPerRow(width: Int) -> Int? {
        ggmlType.byteCount(elements: width)
    }
}
