import Foundation
import LLM

/// The default model, loaded once per process: `$COLLM_MODEL`, else the repository's
/// `.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf` (scripts/test.sh fetches it).
final class FuzzModel: @unchecked Sendable {
    static let shared = FuzzModel()
    private let lock = NSLock()
    private var loaded: (GGUFFile, Tokenizer)?

    static var path: String {
        if let path = ProcessInfo.processInfo.environment["COLLM_MODEL"] { return path }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }

    private func load() throws -> (GGUFFile, Tokenizer) {
        lock.lock()
        defer { lock.unlock() }
        if let loaded { return loaded }
        let file = try GGUFFile(path: Self.path)
        let parts = (file, try Tokenizer(gguf: file))
        loaded = parts
        return parts
    }

    var file: GGUFFile { get throws { try load().0 } }
    var tokenizer: Tokenizer { get throws { try load().1 } }
}

/// Reads little-endian fields off the front of a fuzz input.
struct FuzzInput {
    var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var isEmpty: Bool { bytes.isEmpty }

    mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    mutating func u16() -> UInt16 {
        UInt16(byte()) | UInt16(byte()) << 8
    }

    mutating func u32() -> UInt32 {
        UInt32(u16()) | UInt32(u16()) << 16
    }

    /// The next `count` bytes (fewer at the end).
    mutating func take(_ count: Int) -> [UInt8] {
        let n = min(count, bytes.count)
        defer { bytes.removeFirst(n) }
        return Array(bytes.prefix(n))
    }

    mutating func rest() -> [UInt8] { take(bytes.count) }
}
