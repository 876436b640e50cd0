/// Why a GGUF file was rejected. Every message names the file and what was wrong, so a user with a
/// truncated download or a non-GGUF file knows what to do.
public struct GGUFError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "invalid GGUF file \(path): \(reason)" }
}
