import CollabCore
import LLM

/// `HiddenStateCodec.decode`. Bytes: format (f32, f16, q8 by value % 3; bit 7: rows follow from the
/// payload's length), width selector, row limit, rows (signed 16-bit), then the payload.
enum CodecFuzz {
    static let widths = [32, 64, 576, 1, 3, 17, 640, 0, -32, 96]

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let head = input.byte()
        let format = WireFormat.allCases[Int(head & 0x7F) % 3]
        let width = widths[Int(input.byte()) % widths.count]
        let maxRows = Int(input.byte()) + 1
        var rows = Int(Int16(bitPattern: input.u16()))
        let payload = input.rest()
        guard let codec = try? HiddenStateCodec(format: format, width: width, maxRows: maxRows) else {
            fuzzCheck(width <= 0 || (format == .q8 && width % 32 != 0), "codec refused width \(width) for \(format)")
            return
        }
        if head & 0x80 != 0 { rows = payload.count / codec.rowBytes }
        let bytes = head & 0x80 != 0 ? Array(payload.prefix(rows * codec.rowBytes)) : payload
        guard let states = try? codec.decode(bytes, rows: rows) else { return }
        fuzzCheck(states.rows == rows && states.width == width && states.values.count == rows * width, "decoded shape")
        fuzzCheck(states.values.allSatisfy(\.isFinite), "decoded a non-finite value")
        // What decodes re-encodes (f32 and f16 exactly).
        guard let again = try? codec.encode(states) else { fatalError("re-encoding decoded \(format) states failed") }
        fuzzCheck(again.count == bytes.count, "re-encoded size")
        if format != .q8 {
            fuzzCheck((try? codec.decode(again, rows: rows))?.values == states.values, "\(format) round trip")
        }
    }

    static func seeds() throws -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        for (f, format) in WireFormat.allCases.enumerated() {
            let codec = try HiddenStateCodec(format: format, width: 64)
            let values = (0..<128).map { Float($0 % 17 - 8) / 4 }
            let payload = try codec.encode(HiddenStates(values: values, width: 64))
            seeds.append([UInt8(f), 1, 7, 2, 0] + payload)
            seeds.append([UInt8(f) | 0x80, 1, 7, 0, 0] + payload)
        }
        return seeds
    }
}
