/// A parsed, memory-mapped GGUF file (versions 2 and 3): metadata, tensor directory and tensor bytes.
/// Parsing validates the whole directory up front (sizes, offsets, alignment), so later tensor
/// access cannot fault on a truncated or corrupted file.
public final class GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    private let mapping: MappedFile
    private let tensorIndex: [String: Int]

    static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    static let maxTensors = 1 << 20
    static let maxMetadata = 1 << 20

    public convenience init(path: String) throws {
        try self.init(mapping: MappedFile(path: path))
    }

    /// Parses GGUF bytes held in memory (`path` names them in errors).
    public convenience init(bytes: [UInt8], path: String = "<memory>") throws {
        try self.init(mapping: MappedFile(copying: bytes, path: path))
    }

    init(mapping: MappedFile) throws {
        self.mapping = mapping
        path = mapping.path
        var reader = GGUFReader(bytes: mapping.bytes, path: mapping.path)
        guard try reader.read(UInt32.self, "magic") == Self.magic else {
            throw GGUFError(path: path, reason: "not a GGUF file (bad magic)")
        }
        version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw GGUFError(path: path, reason: "unsupported GGUF version \(version) (2 and 3 are supported)")
        }
        let tensorCount = try reader.readCount("tensor count", limit: Self.maxTensors)
        let metadataCount = try reader.readCount("metadata count", limit: Self.maxMetadata)

        var metadata: [String: GGUFValue] = [:]
        for index in 0..<metadataCount {
            let key = try reader.readString("metadata key #\(index)")
            let type = try reader.read(UInt32.self, "type of \(key)")
            guard metadata[key] == nil else { throw reader.fail("duplicate metadata key \(key)") }
            metadata[key] = try reader.readValue(type: type, key: key)
        }
        self.metadata = metadata

        let alignment = metadata["general.alignment"]?.intValue ?? 32
        guard alignment > 0, alignment <= 1 << 16, alignment & (alignment - 1) == 0 else {
            throw GGUFError(path: path, reason: "general.alignment \(alignment) is not a power of two")
        }
        self.alignment = alignment

        var raw: [(String, GGMLType, [Int], Int)] = []
        for index in 0..<tensorCount {
            let name = try reader.readString("name of tensor #\(index)")
            let dims = try reader.read(UInt32.self, "rank of \(name)")
            guard dims >= 1, dims <= 4 else { throw reader.fail("tensor \(name) has rank \(dims)") }
            var shape: [Int] = []
            for _ in 0..<dims {
                shape.append(try reader.readCount("dimension of \(name)", limit: 1 << 40))
            }
            let type = GGMLType(rawValue: try reader.read(UInt32.self, "type of \(name)"))
            let offset = try reader.readCount("offset of \(name)", limit: 1 << 48)
            raw.append((name, type, shape, offset))
        }

        let dataStart = (reader.offset + alignment - 1) / alignment * alignment
        let fileSize = mapping.bytes.count
        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for (name, type, shape, offset) in raw {
            guard type.isKnown else {
                throw GGUFError(path: path, reason: "tensor \(name) has unknown type \(type.rawValue)")
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= 1 << 40 else {
                    throw GGUFError(path: path, reason: "tensor \(name) shape \(shape) is too large")
                }
                elements = product
            }
            guard shape[0] % type.blockElements == 0, let size = type.byteCount(elements: elements) else {
                throw GGUFError(path: path, reason: "tensor \(name) shape \(shape) does not fit \(type) blocks")
            }
            guard offset % alignment == 0 else {
                throw GGUFError(path: path, reason: "tensor \(name) offset \(offset) is not aligned to \(alignment)")
            }
            let start = dataStart + offset
            guard start <= fileSize, size <= fileSize - start else {
                throw GGUFError(
                    path: path,
                    reason: "tensor \(name) needs bytes \(start)..<\(start + size) but the file has \(fileSize) (truncated?)")
            }
            guard index[name] == nil else {
                throw GGUFError(path: path, reason: "duplicate tensor name \(name)")
            }
            index[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, type: type, shape: shape, fileOffset: start, byteCount: size))
        }
        // Two tensors sharing bytes is a corrupt (or hostile) file: one would be read as the other.
        let byStart = infos.filter { $0.byteCount > 0 }.sorted { $0.fileOffset < $1.fileOffset }
        for (a, b) in zip(byStart, byStart.dropFirst()) where a.fileOffset + a.byteCount > b.fileOffset {
            throw GGUFError(path: path, reason: "tensors \(a.name) and \(b.name) overlap in the file (bytes \(b.fileOffset)..<\(a.fileOffset + a.byteCount))")
        }
        tensors = infos
        tensorIndex = index
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes, in place in the mapping (valid as long as this file object lives).
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapping.bytes[tensor.fileOffset..<tensor.fileOffset + tensor.byteCount])
    }

    /// Total file size in bytes.
    public var fileSize: Int { mapping.bytes.count }

    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue }
    public func strings(_ key: String) -> [String]? { metadata[key]?.stringsValue }
    public func ints(_ key: String) -> [Int]? { metadata[key]?.intsValue }
}
