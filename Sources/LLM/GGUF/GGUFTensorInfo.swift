/// One tensor's entry in a GGUF file. `shape` is in ggml order: `shape[0]` is the contiguous
/// dimension (a weight matrix's columns).
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    public let shape: [Int]
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
    public var rows: Int { shape.dropFirst().reduce(1, *) }
    public var columns: Int { shape.first ?? 1 }
}
