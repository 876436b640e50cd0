import CKernels

/// The weights of one decoder layer: norms, stacked QKV (with optional bias, as Qwen2),
/// the output projection and the stacked gate/up and down projections of the gated FFN; Gemma layers
/// add per-head query/key norms and norms of the attention and FFN outputs.
final class TransformerLayer: @unchecked Sendable {
    let index: Int
    let attentionNorm: [Float]
    let qkv: WeightMatrix
    let qkvBias: [Float]?
    let output: WeightMatrix
    let ffnNorm: [Float]
    let gateUp: WeightMatrix
    let down: WeightMatrix
    /// Gemma: RMSNorm weights (head_dim) applied to each query / key head before RoPE.
    let queryNorm: [Float]?
    let keyNorm: [Float]?
    /// Gemma: RMSNorm weights applied to the attention / FFN output before its residual add.
    let postAttentionNorm: [Float]?
    let postFeedForwardNorm: [Float]?

    init(index i: Int, loader: TensorLoader, config: ModelConfig) throws {
        index = i
        let p = "blk.\(i)."
        attentionNorm = try loader.vector(p + "attn_norm.weight", count: config.hiddenSize)
        let q = try loader.info(p + "attn_q.weight", shape: [config.hiddenSize, config.queryDim])
        let k = try loader.info(p + "attn_k.weight", shape: [config.hiddenSize, config.kvDim])
        let v = try loader.info(p + "attn_v.weight", shape: [config.hiddenSize, config.kvDim])
        qkv = try loader.matrix([q, k, v])
        if loader.has(p + "attn_q.bias") {
            qkvBias = try loader.vector(p + "attn_q.bias", count: config.queryDim)
                + loader.vector(p + "attn_k.bias", count: config.kvDim)
                + loader.vector(p + "attn_v.bias", count: config.kvDim)
        } else {
            qkvBias = nil
        }
        output = try loader.matrix([loader.info(p + "attn_output.weight", shape: [config.queryDim, config.hiddenSize])])
        ffnNorm = try loader.vector(p + "ffn_norm.weight", count: config.hiddenSize)
        let gate = try loader.info(p + "ffn_gate.weight", shape: [config.hiddenSize, config.feedForwardSize])
        let up = try loader.info(p + "ffn_up.weight", shape: [config.hiddenSize, config.feedForwardSize])
        gateUp = try loader.matrix([gate, up])
        down = try loader.matrix([loader.info(p + "ffn_down.weight", shape: [config.feedForwardSize, config.hiddenSize])])
        if config.block == .gemma {
            // The converter stores Gemma's norm weights with its +1 already added: used as they are.
            queryNorm = try loader.vector(p + "attn_q_norm.weight", count: config.headDim)
            keyNorm = try loader.vector(p + "attn_k_norm.weight", count: config.headDim)
            postAttentionNorm = try loader.vector(p + "post_attention_norm.weight", count: config.hiddenSize)
            postFeedForwardNorm = try loader.vector(p + "post_ffw_norm.weight", count: config.hiddenSize)
        } else {
            queryNorm = nil
            keyNorm = nil
            postAttentionNorm = nil
            postFeedForwardNorm = nil
        }
    }

    /// A llama layer from f32 weights, each matrix quantized to `format` and packed as a GGUF layer's would be.
    init(index i: Int, weights w: DecoderLayerWeights, config c: ModelConfig, format: GGMLType,
         activations: ActivationPrecision) throws {
        guard c.block == .llama, w.width == c.hiddenSize else {
            throw EngineError.shapeMismatch("a \(w.width)-wide llama layer does not fit this \(c.architecture) model (width \(c.hiddenSize))")
        }
        let (d, q, kv, f) = (c.hiddenSize, c.queryDim, c.kvDim, c.feedForwardSize)
        func matrix(_ values: [Float], rows: Int, columns: Int) throws -> WeightMatrix {
            try WeightMatrix(quantizing: values, rows: rows, columns: columns, type: format, activations: activations)
        }
        guard w.attentionNorm.count == d, w.ffnNorm.count == d else {
            throw EngineError.shapeMismatch("layer norms of \(w.attentionNorm.count) and \(w.ffnNorm.count) values, width \(d)")
        }
        index = i
        attentionNorm = w.attentionNorm
        qkv = try matrix(w.qkv, rows: q + 2 * kv, columns: d)
        qkvBias = nil
        output = try matrix(w.output, rows: d, columns: q)
        ffnNorm = w.ffnNorm
        gateUp = try matrix(w.gateUp, rows: 2 * f, columns: d)
        down = try matrix(w.down, rows: d, columns: f)
        queryNorm = nil
        keyNorm = nil
        postAttentionNorm = nil
        postFeedForwardNorm = nil
    }

    var weightBytes: Int { qkv.packedBytes + output.packedBytes + gateUp.packedBytes + down.packedBytes }
}
