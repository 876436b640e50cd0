/// Errors from running a model, with messages meant for the person at the command line.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    case invalidToken(Int, vocabularySize: Int)
    case contextFull(needed: Int, capacity: Int)
    case noEmbeddings(layers: Range<Int>)
    case noHead(layers: Range<Int>)
    case invalidLayerRange(Range<Int>, layerCount: Int)
    case shapeMismatch(String)
    case emptyInput

    public var description: String {
        switch self {
        case .invalidToken(let t, let v): return "token id \(t) is outside the vocabulary (0..<\(v))"
        case .contextFull(let n, let c): return "context full: \(n) positions needed, the KV cache holds \(c)"
        case .noEmbeddings(let r): return "layers \(r) do not start at 0, so this instance has no token embeddings"
        case .noHead(let r): return "this instance (layers \(r)) was loaded without the output head"
        case .invalidLayerRange(let r, let l): return "layer range \(r) is not within 0..<\(l) or is empty"
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .emptyInput: return "empty input"
        }
    }
}
