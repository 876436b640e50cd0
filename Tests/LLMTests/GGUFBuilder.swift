import Foundation

/// Writes small GGUF files for tests, so malformed-file handling can be checked on exact bytes.
struct GGUFBuilder {
    var version: UInt32 = 3
    var alignment = 32
    /// Data offsets written instead of the computed ones (to build overlapping tensors).
    var offsetOverrides: [String: Int] = [:]
    private var metadata: [(String, UInt32, Data)] = []
    private var tensors: [(name: String, shape: [Int], type: UInt32, data: Data)] = []

    mutating func add(_ key: String, string value: String) {
        metadata.append((key, 8, Self.string(value)))
    }

    mutating func add(_ key: String, uint32 value: UInt32) {
        metadata.append((key, 4, Self.le(value)))
    }

    mutating func add(_ key: String, float32 value: Float) {
        metadata.append((key, 6, Self.le(value.bitPattern)))
    }

    mutating func add(_ key: String, strings values: [String]) {
        var d = Self.le(UInt32(8)) + Self.le(UInt64(values.count))
        for v in values { d += Self.string(v) }
        metadata.append((key, 9, d))
    }

    mutating func add(_ key: String, int32s values: [Int32]) {
        var d = Self.le(UInt32(5)) + Self.le(UInt64(values.count))
        for v in values { d += Self.le(UInt32(bitPattern: v)) }
        metadata.append((key, 9, d))
    }

    /// Adds an f32 tensor; `shape` in ggml order.
    mutating func addTensor(_ name: String, shape: [Int], values: [Float]) {
        var d = Data()
        for v in values { d += Self.le(v.bitPattern) }
        tensors.append((name, shape, 0, d))
    }

    mutating func addTensor(_ name: String, shape: [Int], type: UInt32, bytes: Data) {
        tensors.append((name, shape, type, bytes))
    }

    func build() -> Data {
        var out = Data("GGUF".utf8)
        out += Self.le(version)
        out += Self.le(UInt64(tensors.count))
        out += Self.le(UInt64(metadata.count))
        for (key, type, value) in metadata {
            out += Self.string(key) + Self.le(type) + value
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, o) in zip(tensors, offsets) {
            out += Self.string(t.name) + Self.le(UInt32(t.shape.count))
            for d in t.shape { out += Self.le(UInt64(d)) }
            out += Self.le(t.type) + Self.le(UInt64(offsetOverrides[t.name] ?? o))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out += t.data
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> Data {
        withUnsafeBytes(of: v.littleEndian) { Data($0) }
    }

    static func string(_ s: String) -> Data {
        le(UInt64(s.utf8.count)) + Data(s.utf8)
    }
}

/// A temporary file removed when the value is released.
final class TemporaryFile {
    let path: String

    init(_ data: Data, suffix: String = ".gguf") {
        path = NSTemporaryDirectory() + "collm-test-\(UUID().uuidString)\(suffix)"
        _ = FileManager.default.createFile(atPath: path, contents: data)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
