/// A bounds-checked cursor over GGUF bytes. Every read can fail with a precise reason, so a cut or
/// corrupted file is rejected, never read past its end.
struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0
    /// Caps on declared lengths, checked before allocating, so a corrupt count cannot exhaust memory.
    static let maxStringBytes = 1 << 24
    static let maxArrayCount = 1 << 26

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    func fail(_ reason: String) -> GGUFError {
        GGUFError(path: path, reason: "\(reason) (at byte \(offset) of \(bytes.count))")
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else { throw fail("truncated while reading \(what())") }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: value)
    }

    mutating func readCount(_ what: @autoclosure () -> String, limit: Int) throws -> Int {
        let raw = try read(UInt64.self, what())
        guard raw <= UInt64(limit) else { throw fail("\(what()) \(raw) exceeds the limit \(limit)") }
        return Int(raw)
    }

    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let count = try readCount("length of \(what())", limit: Self.maxStringBytes)
        guard bytes.count - offset >= count else { throw fail("truncated inside \(what())") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
        offset += count
        return String(decoding: slice, as: UTF8.self)
    }

    mutating func readValue(type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try read(UInt8.self, key)))
        case 1: return .int(Int64(try read(Int8.self, key)))
        case 2: return .uint(UInt64(try read(UInt16.self, key)))
        case 3: return .int(Int64(try read(Int16.self, key)))
        case 4: return .uint(UInt64(try read(UInt32.self, key)))
        case 5: return .int(Int64(try read(Int32.self, key)))
        case 6: return .float(Double(Float(bitPattern: try read(UInt32.self, key))))
        case 7:
            let b = try read(UInt8.self, key)
            guard b <= 1 else { throw fail("bool value \(b) for \(key)") }
            return .bool(b == 1)
        case 8: return .string(try readString(key))
        case 9: return try readArray(key: key, depth: depth)
        case 10: return .uint(try read(UInt64.self, key))
        case 11: return .int(try read(Int64.self, key))
        case 12: return .float(Double(bitPattern: try read(UInt64.self, key)))
        default: throw fail("unknown value type \(type) for \(key)")
        }
    }

    private mutating func readArray(key: String, depth: Int) throws -> GGUFValue {
        guard depth < 4 else { throw fail("arrays nested too deeply in \(key)") }
        let elementType = try read(UInt32.self, "array type of \(key)")
        let count = try readCount("array length of \(key)", limit: Self.maxArrayCount)
        // Every element takes at least one byte: reject counts the remaining bytes cannot hold.
        guard count <= bytes.count - offset else { throw fail("array \(key) longer than the file") }
        switch elementType {
        case 8:
            var values: [String] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readString(key)) }
            return .strings(values)
        case 7:
            var values: [Bool] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readValue(type: 7, key: key).boolValue!) }
            return .bools(values)
        case 6, 12:
            var values: [Double] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readValue(type: elementType, key: key).doubleValue!) }
            return .floats(values)
        case 0, 1, 2, 3, 4, 5, 10, 11:
            var values: [Int64] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                switch try readValue(type: elementType, key: key) {
                case .int(let v): values.append(v)
                case .uint(let v): values.append(Int64(bitPattern: v))
                default: throw fail("bad integer in \(key)")
                }
            }
            return .ints(values)
        case 9:
            var values: [GGUFValue] = []
            for _ in 0..<count { values.append(try readValue(type: 9, key: key, depth: depth + 1)) }
            return .arrays(values)
        default:
            throw fail("unknown array element type \(elementType) in \(key)")
        }
    }
}
