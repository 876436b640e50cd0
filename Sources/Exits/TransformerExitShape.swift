/// Sizes of a transformer-layer exit block (issue 6, block (b)) and where each tensor sits in its
/// flat parameter vector. Q, K and V are stacked (as the engine does), and so are gate and up, so
/// each pair of products is one matrix product forward and backward.
public struct TransformerExitShape: Sendable, Equatable, Codable {
    public let width: Int
    public let headCount: Int
    public let kvHeadCount: Int
    public let headDim: Int
    public let feedForwardWidth: Int
    public let ropeBase: Float
    /// Rotary pairs (i, i + headDim/2) instead of (2i, 2i + 1).
    public let ropeHalves: Bool
    public let epsilon: Float

    public init(width: Int, headCount: Int, kvHeadCount: Int, headDim: Int, feedForwardWidth: Int,
                ropeBase: Float = 10_000, ropeHalves: Bool = false, epsilon: Float = 1e-5) {
        precondition(width > 0 && headCount > 0 && kvHeadCount > 0 && headCount % kvHeadCount == 0
                     && headDim > 0 && headDim % 2 == 0 && feedForwardWidth > 0)
        self.width = width
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.feedForwardWidth = feedForwardWidth
        self.ropeBase = ropeBase
        self.ropeHalves = ropeHalves
        self.epsilon = epsilon
    }

    public var queryDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }
    /// Width of a row of stacked Q, K, V.
    public var qkvWidth: Int { queryDim + 2 * kvDim }

    public var attentionNorm: Range<Int> { 0..<width }
    /// [Wq; Wk; Wv]: qkvWidth x width.
    public var qkv: Range<Int> { attentionNorm.upperBound..<(attentionNorm.upperBound + qkvWidth * width) }
    /// Wo: width x queryDim.
    public var output: Range<Int> { qkv.upperBound..<(qkv.upperBound + width * queryDim) }
    public var ffnNorm: Range<Int> { output.upperBound..<(output.upperBound + width) }
    /// [Wgate; Wup]: 2 feedForwardWidth x width.
    public var gateUp: Range<Int> { ffnNorm.upperBound..<(ffnNorm.upperBound + 2 * feedForwardWidth * width) }
    /// Wdown: width x feedForwardWidth.
    public var down: Range<Int> { gateUp.upperBound..<(gateUp.upperBound + width * feedForwardWidth) }

    public var parameterCount: Int { down.upperBound }

    /// Multiply-adds per token of the projections (attention over the context adds
    /// 2 x queryDim per cached position).
    public var multiplyAddsPerToken: Int { (qkvWidth + queryDim + 3 * feedForwardWidth) * width }
}
