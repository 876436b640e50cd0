import CKernels
import LLM

/// Why encoded hidden states were refused. A peer that sends any of these gets an error back;
/// nothing malformed ever reaches the model.
public enum WireError: Error, Equatable, CustomStringConvertible {
    case unsupportedWidth(width: Int, format: WireFormat)
    case sizeMismatch(expected: Int, actual: Int)
    case tooManyRows(Int, limit: Int)
    case nonFinite(row: Int, column: Int)

    public var description: String {
        switch self {
        case .unsupportedWidth(let w, let f): return "width \(w) cannot be encoded as \(f.rawValue)"
        case .sizeMismatch(let e, let a): return "hidden-state payload has \(a) bytes, expected \(e)"
        case .tooManyRows(let n, let l): return "\(n) rows exceed the limit of \(l) per message"
        case .nonFinite(let r, let c): return "non-finite value at row \(r), column \(c)"
        }
    }
}

/// Encodes and decodes rows of hidden states in a wire format, rejecting wrong sizes and
/// non-finite values (before encoding, and again after decoding what a peer sent).
public struct HiddenStateCodec: Sendable {
    public let format: WireFormat
    public let width: Int
    public let rowBytes: Int
    /// Rows one message may carry (bounds a hostile peer's allocation).
    public let maxRows: Int

    public init(format: WireFormat, width: Int, maxRows: Int = 8192) throws {
        guard width > 0, let bytes = format.bytesPerRow(width: width) else {
            throw WireError.unsupportedWidth(width: width, format: format)
        }
        self.format = format
        self.width = width
        self.rowBytes = bytes
        self.maxRows = maxRows
    }

    public func encode(_ states: HiddenStates) throws -> [UInt8] {
        guard states.width == width else { throw WireError.unsupportedWidth(width: states.width, format: format) }
        guard states.rows <= maxRows else { throw WireError.tooManyRows(states.rows, limit: maxRows) }
        try Self.checkFinite(states.values, width: width)
        var out = [UInt8](repeating: 0, count: states.rows * rowBytes)
        let type = ck_type(rawValue: format.ggmlType.rawValue)
        out.withUnsafeMutableBytes { dst in
            states.values.withUnsafeBufferPointer { src in
                for r in 0..<states.rows {
                    ck_quantize_row_ref(type, src.baseAddress! + r * width, dst.baseAddress! + r * rowBytes, Int64(width))
                }
            }
        }
        if format == .f16 {
            // Values beyond f16's range became infinities: refuse rather than send them.
            try Self.checkFinite(try decode(out, rows: states.rows, validate: false).values, width: width)
        }
        return out
    }

    public func decode(_ bytes: [UInt8], rows: Int) throws -> HiddenStates {
        try decode(bytes, rows: rows, validate: true)
    }

    private func decode(_ bytes: [UInt8], rows: Int, validate: Bool) throws -> HiddenStates {
        guard rows >= 0, rows <= maxRows else { throw WireError.tooManyRows(rows, limit: maxRows) }
        guard bytes.count == rows * rowBytes else {
            throw WireError.sizeMismatch(expected: rows * rowBytes, actual: bytes.count)
        }
        var values = [Float](repeating: 0, count: rows * width)
        let type = ck_type(rawValue: format.ggmlType.rawValue)
        values.withUnsafeMutableBufferPointer { dst in
            bytes.withUnsafeBytes { src in
                for r in 0..<rows {
                    ck_dequantize_row(type, src.baseAddress! + r * rowBytes, dst.baseAddress! + r * width, Int64(width))
                }
            }
        }
        if validate { try Self.checkFinite(values, width: width) }
        return HiddenStates(values: values, width: width)
    }

    private static func checkFinite(_ values: [Float], width: Int) throws {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw WireError.nonFinite(row: i / width, column: i % width)
        }
    }
}
