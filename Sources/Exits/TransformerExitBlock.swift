import CKernels
import LLM

/// A transformer-layer exit block (issue 6, block (b)): z = layer(h), one decoder layer (attention
/// with its own KV cache, then SwiGLU FFN, both residual) applied to the exit layer's states before
/// the model's final norm and head. Initialised as a copy of one of the model's own layers, so
/// training starts from a block that already speaks the residual stream's language.
public struct TransformerExitBlock: Sendable, Equatable {
    public let shape: TransformerExitShape
    public var parameters: [Float]

    public init(shape: TransformerExitShape, parameters: [Float]) throws {
        guard parameters.count == shape.parameterCount else {
            throw TrainingError.shapeMismatch("\(parameters.count) parameters, shape needs \(shape.parameterCount)")
        }
        self.shape = shape
        self.parameters = parameters
    }

    /// A copy of layer `layer` of the model in `file`, dequantized to f32.
    public init(copying layer: Int, of file: GGUFFile) throws {
        let c = try ModelConfig(gguf: file)
        guard layer >= 0, layer < c.layerCount else {
            throw TrainingError.shapeMismatch("layer \(layer) is not within 0..<\(c.layerCount)")
        }
        let p = "blk.\(layer)."
        if c.block != .llama {
            throw TrainingError.shapeMismatch("\(c.architecture) layers (Q/K and post norms, GELU) cannot seed a transformer exit block, which follows the llama layer; use MLP exit blocks")
        }
        if file.tensor(named: p + "attn_q.bias") != nil {
            throw TrainingError.shapeMismatch("layer \(layer) has QKV biases, which transformer exit blocks do not support yet")
        }
        let shape = TransformerExitShape(width: c.hiddenSize, headCount: c.headCount, kvHeadCount: c.kvHeadCount,
                                         headDim: c.headDim, feedForwardWidth: c.feedForwardSize, ropeBase: c.ropeBase,
                                         ropeHalves: c.ropeStyle == .halves, epsilon: c.rmsEpsilon)
        var values: [Float] = []
        values.reserveCapacity(shape.parameterCount)
        let d = c.hiddenSize
        for (name, rows) in [("attn_norm", 1), ("attn_q", c.queryDim), ("attn_k", c.kvDim), ("attn_v", c.kvDim),
                             ("attn_output", d), ("ffn_norm", 1), ("ffn_gate", c.feedForwardSize),
                             ("ffn_up", c.feedForwardSize), ("ffn_down", d)] {
            let columns = name == "attn_output" ? c.queryDim : name == "ffn_down" ? c.feedForwardSize : d
            values += try dequantizedTensor(file, p + name + ".weight", rows: rows, columns: columns)
        }
        try self.init(shape: shape, parameters: values)
    }
}

extension TransformerExitBlock {
    /// The block's weights in the engine's stacking, for packing into one of its formats.
    public var decoderLayerWeights: DecoderLayerWeights {
        let s = shape
        func part(_ range: Range<Int>) -> [Float] { Array(parameters[range]) }
        return DecoderLayerWeights(width: s.width, attentionNorm: part(s.attentionNorm), qkv: part(s.qkv),
                                   output: part(s.output), ffnNorm: part(s.ffnNorm), gateUp: part(s.gateUp),
                                   down: part(s.down))
    }

    /// Whether the block has the geometry of `config`'s layers (the engine runs it with that config).
    public func fits(_ config: ModelConfig) -> Bool {
        let s = shape
        return config.block == .llama && s.width == config.hiddenSize && s.headCount == config.headCount
            && s.kvHeadCount == config.kvHeadCount && s.headDim == config.headDim
            && s.feedForwardWidth == config.feedForwardSize && s.ropeBase == config.ropeBase
            && s.ropeHalves == (config.ropeStyle == .halves) && s.epsilon == config.rmsEpsilon
            && config.attentionScale == 1 / Float(s.headDim).squareRoot()
    }
}

/// A GGUF tensor as rows x columns f32 values (row-major, as the engine's matrices).
package func dequantizedTensor(_ file: GGUFFile, _ name: String, rows: Int, columns: Int) throws -> [Float] {
    guard let info = file.tensor(named: name) else { throw TrainingError.missingTensor(name) }
    guard info.elementCount == rows * columns, info.columns == columns, info.type.isSupported else {
        throw TrainingError.shapeMismatch("\(name) is \(info.type) \(info.shape), expected \(columns) x \(rows)")
    }
    let type = ck_type(rawValue: info.type.rawValue)
    let rowBytes = ck_row_bytes(type, Int64(columns))
    let data = file.data(for: info)
    return [Float](unsafeUninitializedCapacity: rows * columns) { out, initialized in
        for r in 0..<rows {
            ck_dequantize_row(type, data.baseAddress! + r * rowBytes, out.baseAddress! + r * columns, Int64(columns))
        }
        initialized = rows * columns
    }
}
