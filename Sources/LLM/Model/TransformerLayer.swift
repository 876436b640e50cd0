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

    var weightBytes: Int { qkv.packedBytes + output.packedBytes + gateUp.packedBytes + down.packedBytes }
}
