import Foundation

/// A safetensors file (8-byte little-endian header length, JSON header, raw little-endian data),
/// the format our calibration files use: simple, standard, readable from Python. Only the dtypes
/// we write are supported: F32, F16 (trained exit blocks shipped at half size), I32 and I8 (int8
/// blocks of exit weights).
public struct SafetensorsFile: Sendable {
    public struct Tensor: Sendable, Equatable {
        public enum DType: String, Sendable {
            case f32 = "F32", f16 = "F16", i32 = "I32", i8 = "I8"

            var byteCount: Int {
                switch self {
                case .f32, .i32: 4
                case .f16: 2
                case .i8: 1
                }
            }
        }
        public let dtype: DType
        public let shape: [Int]
        public let data: Data

        public init(floats: [Float], shape: [Int]) {
            precondition(shape.reduce(1, *) == floats.count, "shape \(shape) for \(floats.count) values")
            dtype = .f32
            self.shape = shape
            data = floats.withUnsafeBytes { Data($0) }
        }

        /// Floats stored as IEEE half precision (read back as floats).
        public init(halfPrecision floats: [Float], shape: [Int]) {
            precondition(shape.reduce(1, *) == floats.count, "shape \(shape) for \(floats.count) values")
            dtype = .f16
            self.shape = shape
            data = floats.map { Float16($0) }.withUnsafeBytes { Data($0) }
        }

        public init(ints: [Int32], shape: [Int]) {
            precondition(shape.reduce(1, *) == ints.count, "shape \(shape) for \(ints.count) values")
            dtype = .i32
            self.shape = shape
            data = ints.withUnsafeBytes { Data($0) }
        }

        public init(bytes: [Int8], shape: [Int]) {
            precondition(shape.reduce(1, *) == bytes.count, "shape \(shape) for \(bytes.count) values")
            dtype = .i8
            self.shape = shape
            data = bytes.withUnsafeBytes { Data($0) }
        }

        init(dtype: DType, shape: [Int], data: Data) {
            self.dtype = dtype
            self.shape = shape
            self.data = data
        }

        public var floats: [Float]? {
            switch dtype {
            case .f32: data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            case .f16: data.withUnsafeBytes { $0.bindMemory(to: Float16.self).map(Float.init) }
            case .i32, .i8: nil
            }
        }
        public var bytes: [Int8]? { dtype == .i8 ? data.withUnsafeBytes { Array($0.bindMemory(to: Int8.self)) } : nil }
        public var ints: [Int32]? { dtype == .i32 ? data.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) } : nil }
    }

    public var metadata: [String: String] = [:]
    public var tensors: [String: Tensor] = [:]

    public init() {}

    /// Largest header we accept: a hostile length must not make us allocate gigabytes.
    static let maxHeaderBytes = 64 << 20

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError(path: path, reason: "cannot read the file")
        }
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String = "<memory>") throws {
        func fail(_ reason: String) -> SafetensorsError { SafetensorsError(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("too short for a safetensors header") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(min(Self.maxHeaderBytes, data.count - 8)) else {
            throw fail("header length \(headerLength) exceeds the file")
        }
        let body = data.dropFirst(8 + Int(headerLength))
        let header = data.dropFirst(8).prefix(Int(headerLength))
        guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        for (name, value) in object {
            if name == "__metadata__" {
                guard let meta = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = meta
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("tensor \(name): missing dtype, shape or data_offsets")
            }
            guard let dtype = Tensor.DType(rawValue: dtypeName) else { throw fail("tensor \(name): unsupported dtype \(dtypeName)") }
            guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }),
                  let count = shape.reduce(Int?(1), { acc, d in acc.flatMap { $0.multipliedReportingOverflow(by: d).overflow ? nil : $0 * d } }),
                  offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= body.count, offsets[1] - offsets[0] == count * dtype.byteCount else {
                throw fail("tensor \(name): shape \(shape) does not match data_offsets \(offsets) in a \(body.count)-byte body")
            }
            let start = body.startIndex + offsets[0]
            tensors[name] = Tensor(dtype: dtype, shape: shape, data: Data(body[start..<start + count * dtype.byteCount]))
        }
    }

    /// The file's bytes: tensors in name order, header padded to 8 bytes.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.data.count]] as [String: Any]
            offset += t.data.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names { out.append(tensors[name]!.data) }
        return out
    }

    /// Writes atomically (temporary file + rename), creating the folder if needed.
    /// In chunks: on Linux, `Data.write(to:)` loses every byte past 2 GiB (one write(2) call moves at most
    /// that much), and a calibration dataset is larger.
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let data = try serialized()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw SafetensorsError(path: path, reason: "cannot create \(temporary.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            let chunk = 64 << 20
            var offset = data.startIndex
            while offset < data.endIndex {
                let end = min(data.endIndex, offset + chunk)
                try handle.write(contentsOf: data[offset..<end])
                offset = end
            }
            try handle.synchronize()
            guard rename(temporary.path, url.path) == 0 else {
                throw SafetensorsError(path: path, reason: "cannot move the written file into place (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}

public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): not a valid safetensors file: \(reason)" }
}
