/// Hyper-parameters of a Llama-family model, read from GGUF metadata so that other Llama-style
/// models (TinyLlama, Llama 2/3, Qwen2 with QKV bias) load by configuration, not code changes.
/// Gemma 3 is the same decoder with a few switches (`block == .gemma`), as llama.cpp's gemma3 graph:
/// embeddings scaled by sqrt(hidden), per-head RMSNorm of queries and keys, RMSNorm of the attention
/// and FFN outputs before their residual adds, a GELU-gated FFN, and sliding-window attention with
/// its own RoPE base on all but every sixth layer.
public struct ModelConfig: Sendable, Equatable {
    public enum RopeStyle: Sendable, Equatable {
        /// Rotates adjacent pairs (2i, 2i+1): GGUF `llama` files (weights were permuted at conversion).
        case adjacentPairs
        /// Rotates halves (i, i + d/2): GGUF `qwen2` and other NEOX-style files.
        case halves
    }

    /// Which layer layout the weights follow.
    public enum Block: Sendable, Equatable {
        /// Pre-norm attention and SwiGLU FFN (llama, mistral, qwen2).
        case llama
        /// Gemma 3: adds `attn_q_norm`/`attn_k_norm` (per head), `post_attention_norm` and
        /// `post_ffw_norm`, and gates the FFN with GELU (tanh approximation) instead of SiLU.
        case gemma
    }

    public var architecture: String
    public var block: Block
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
    /// Token embeddings are multiplied by this (Gemma: sqrt(hidden), as f32; others 1).
    public var embeddingScale: Float
    /// Attention scores are q.k times this: 1/sqrt(head_dim) (Gemma's query_pre_attn_scalar is the
    /// head dim for every size up to 12B; llama.cpp uses hidden/heads for the 27B model).
    public var attentionScale: Float
    /// Attention span of sliding-window layers (0: none).
    public var slidingWindow: Int
    /// Per layer: true when the layer attends within `slidingWindow` (and rotates with `localRopeBase`).
    public var slidingLayers: [Bool]
    /// RoPE base of sliding-window layers (`rope.freq_base` is the global layers' base).
    public var localRopeBase: Float

    public var kvDim: Int { kvHeadCount * headDim }
    public var queryDim: Int { headCount * headDim }

    /// The RoPE base of a layer: the local base on sliding-window layers.
    public func ropeBase(layer: Int) -> Float { slidingLayers[layer] ? localRopeBase : ropeBase }
    /// The attention window of a layer (0: the whole causal context).
    public func attentionWindow(layer: Int) -> Int { slidingLayers[layer] ? slidingWindow : 0 }

    static let supportedArchitectures: [String: RopeStyle] = [
        "llama": .adjacentPairs, "mistral": .adjacentPairs, "qwen2": .halves, "gemma3": .halves,
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
        // Before anything is sized by them: a corrupt block_count of 2^34 would otherwise allocate per-layer
        // tables of that length (found by the gguf fuzz target, Tests/FuzzRegressions/gguf).
        guard layerCount <= 1024, hiddenSize <= 1 << 16, feedForwardSize <= 1 << 18, headCount <= 1024 else {
            throw fail("hyperparameters out of range: \(layerCount) layers, hidden \(hiddenSize), feed-forward \(feedForwardSize), \(headCount) heads")
        }
        kvHeadCount = gguf.int("\(arch).attention.head_count_kv") ?? headCount
        headDim = gguf.int("\(arch).attention.key_length") ?? hiddenSize / headCount
        contextLength = gguf.int("\(arch).context_length") ?? 2048
        ropeBase = Float(gguf.double("\(arch).rope.freq_base") ?? 10_000)
        rmsEpsilon = Float(gguf.double("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5)
        block = arch == "gemma3" ? .gemma : .llama
        embeddingScale = block == .gemma ? Float(hiddenSize).squareRoot() : 1
        attentionScale = 1 / Float(headDim).squareRoot()
        slidingWindow = 0
        slidingLayers = [Bool](repeating: false, count: layerCount)
        localRopeBase = ropeBase
        if block == .gemma {
            // llama.cpp's gemma3 defaults: sliding windows when the key is present, every sixth layer
            // global (pattern 6: layer i slides when i % 6 < 5), local RoPE base 10000.
            if let window = gguf.int("\(arch).attention.sliding_window"), window > 0 {
                slidingWindow = window
                if gguf.metadata["\(arch).attention.sliding_window_pattern"] != nil {
                    throw fail("\(arch).attention.sliding_window_pattern is not supported (only the default pattern of 6)")
                }
                slidingLayers = (0..<layerCount).map { $0 % 6 < 5 }
                localRopeBase = Float(gguf.double("\(arch).rope.freq_base_swa") ?? 10_000)
            }
            if layerCount == 62 {
                throw fail("Gemma 3 27B (62 layers, attention scale from hidden/heads) is not supported")
            }
            if let cap = gguf.double("\(arch).final_logit_softcapping"), cap != 0 {
                throw fail("\(arch).final_logit_softcapping is not supported")
            }
            if let factor = gguf.double("\(arch).rope.scaling.factor"), factor != 1 {
                throw fail("\(arch).rope.scaling.factor \(factor) is not supported (Gemma 3 4B and larger scale RoPE)")
            }
        }
        // A NaN or absurd epsilon or RoPE base would not fail loudly: it would turn every output into NaN.
        guard rmsEpsilon.isFinite, rmsEpsilon > 0, rmsEpsilon < 1 else {
            throw fail("\(arch).attention.layer_norm_rms_epsilon \(rmsEpsilon) is out of range (0, 1)")
        }
        for (key, base) in [("rope.freq_base", ropeBase), ("rope.freq_base_swa", localRopeBase)] {
            guard base.isFinite, base > 1, base < 1e12 else { throw fail("\(arch).\(key) \(base) is out of range (1, 1e12)") }
        }
        guard contextLength > 0, contextLength <= 1 << 24 else {
            throw fail("\(arch).context_length \(contextLength) is out of range")
        }
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
