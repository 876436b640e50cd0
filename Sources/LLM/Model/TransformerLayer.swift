import CKernels

/// The weights of one decoder layer: norms, stacked QKV (with optional bias, as Qwen2),
/// the output projection and the stacked gate/up and down projections of the SwiGLU FFN.
final class TransformerLayer: @unchecked Sendable {
    let index: Int
    let attentionNorm: [Float]
    let qkv: WeightMatrix
    let qkvBias: [Float]?
    let output: WeightMatrix
    let ffnNorm: [Float]
    let gateUp: WeightMatrix
    let down: WeightMatrix

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
    }

    var weightBytes: Int { qkv.packedBytes + output.packedBytes + gateUp.packedBytes + down.packedBytes }
}
