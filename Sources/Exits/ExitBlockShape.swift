/// Sizes of a residual MLP exit block and where each tensor sits in its flat parameter vector.
/// One flat vector lets the optimizer, checkpoints and gradient checks treat all parameters alike.
public struct ExitBlockShape: Sendable, Equatable, Codable {
    /// Model width d.
    public let width: Int
    /// MLP hidden width H.
    public let hiddenWidth: Int
    /// Whether the block carries an affine adapter A h + b on its residual path (else identity).
    public let hasAdapter: Bool
    /// RMSNorm epsilon of the block's own norm (the model's).
    public let epsilon: Float

    public init(width: Int, hiddenWidth: Int, hasAdapter: Bool = false, epsilon: Float = 1e-5) {
        precondition(width > 0 && hiddenWidth > 0)
        self.width = width
        self.hiddenWidth = hiddenWidth
        self.hasAdapter = hasAdapter
        self.epsilon = epsilon
    }

    /// g: the block's RMSNorm weight (d).
    public var norm: Range<Int> { 0..<width }
    /// W1: H x d, row-major.
    public var up: Range<Int> { norm.upperBound..<(norm.upperBound + hiddenWidth * width) }
    /// W2: d x H, row-major.
    public var down: Range<Int> { up.upperBound..<(up.upperBound + width * hiddenWidth) }
    /// A: d x d, row-major (empty without adapter).
    public var adapterMatrix: Range<Int> { down.upperBound..<(down.upperBound + (hasAdapter ? width * width : 0)) }
    /// b: d (empty without adapter).
    public var adapterBias: Range<Int> { adapterMatrix.upperBound..<(adapterMatrix.upperBound + (hasAdapter ? width : 0)) }

    public var parameterCount: Int { adapterBias.upperBound }

    /// Multiply-adds per token of the block (the two MLP products, plus the adapter's).
    public var multiplyAddsPerToken: Int { 2 * width * hiddenWidth + (hasAdapter ? width * width : 0) }
}
