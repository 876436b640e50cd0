/// One llama decoder layer's weights as f32, row-major, with Q/K/V and gate/up stacked as the
/// engine stacks them. Weights trained outside a GGUF file (an exit block) reach the engine this
/// way, to be quantized into one of its formats and run by its own layer code.
public struct DecoderLayerWeights: Sendable {
    /// Width of the layer's input and output.
    public var width: Int
    public var attentionNorm: [Float]
    /// [Wq; Wk; Wv]: (queryDim + 2 kvDim) x width.
    public var qkv: [Float]
    /// Wo: width x queryDim.
    public var output: [Float]
    public var ffnNorm: [Float]
    /// [Wgate; Wup]: 2 feedForwardWidth x width.
    public var gateUp: [Float]
    /// Wdown: width x feedForwardWidth.
    public var down: [Float]

    public init(width: Int, attentionNorm: [Float], qkv: [Float], output: [Float], ffnNorm: [Float],
                gateUp: [Float], down: [Float]) {
        self.width = width
        self.attentionNorm = attentionNorm
        self.qkv = qkv
        self.output = output
        self.ffnNorm = ffnNorm
        self.gateUp = gateUp
        self.down = down
    }
}
