/// Hyper-parameters of a Llama-family model, read from GGUF metadata so that other Llama-style
/// models (TinyLlama, Llama 2/3, Qwen2 with QKV bias) load by configuration, not code changes.
public struct ModelConfig: Sendable, Equatable {
    public enum RopeStyle: Sendable, Equatable {
        /// Rotates adjacent pairs (2i, 2i+1): GGUF `llama` files (weights were permuted at conversion).
        case adjacentPairs
        /// Rotates halves (i, i + d/2): GGUF `qwen2` and other NEOX-style files.
        case halves
    }

    public var architecture: String
    public var layerCount: Int
    public var hiddenSize: Int
    public var feedForwardSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabularySize: Int
    public var contextLength: Int
    public var ropeBase: Float
    public var ropeStyle: RopeStyle
    public var rmsEpsilon: Float

    public var kvDim: Int { kvHeadCount * headDim }
    public var queryDim: Int { headCount * headDim }

    static let supportedArchitectures: [String: RopeStyle] = [
        "llama": .adjacentPairs, "mistral": .adjacentPairs, "qwen2": .halves,
    ]

    public init(gguf: GGUFFile) throws {
        func fail(_ reason: String) -> GGUFError { GGUFError(path: gguf.path, reason: reason) }
        guard let arch = gguf.string("general.architecture") else {
            throw fail("missing general.architecture")
        }
        guard let rope = Self.supportedArchitectures[arch] else {
            throw fail("architecture '\(arch)' is not supported (supported: \(Self.supportedArchitectures.keys.sorted().joined(separator: ", ")))")
        }
        func required(_ key: String) throws -> Int {
            guard let v = gguf.int("\(arch).\(key)"), v > 0 else { throw fail("missing or invalid \(arch).\(key)") }
            return v
        }
        architecture = arch
        ropeStyle = rope
        layerCount = try required("block_count")
        hiddenSize = try required("embedding_length")
        feedForwardSize = try required("feed_forward_length")
        headCount = try required("attention.head_count")
        kvHeadCount = gguf.int("\(arch).attention.head_count_kv") ?? headCount
        headDim = gguf.int("\(arch).attention.key_length") ?? hiddenSize / headCount
        contextLength = gguf.int("\(arch).context_length") ?? 2048
        ropeBase = Float(gguf.double("\(arch).rope.freq_base") ?? 10_000)
        rmsEpsilon = Float(gguf.double("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5)
        guard let embedding = gguf.tensor(named: "token_embd.weight"), embedding.shape.count == 2 else {
            throw fail("missing token_embd.weight")
        }
        vocabularySize = embedding.shape[1]
        guard kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw fail("head_count \(headCount) is not a multiple of head_count_kv \(kvHeadCount)")
        }
        guard headDim > 0, headDim % 2 == 0, headDim <= 1024 else { throw fail("unsupported head dimension \(headDim)") }
        guard embedding.shape[0] == hiddenSize else {
            throw fail("token_embd.weight has \(embedding.shape[0]) columns, expected \(hiddenSize)")
        }
    }
}
