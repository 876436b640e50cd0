import LLM

/// A layer exit block: one or more transformer layers applied in turn, z = layer_k(... layer_1(h)),
/// each with its own KV cache. A deeper stack brings more of the cloud's depth to the edge's exit,
/// at about one model layer each. Parameters are laid out layer after layer, each as a
/// `TransformerExitBlock`'s.
public struct StackedTransformerExitBlock: Sendable, Equatable {
    public let shape: TransformerExitShape
    public let depth: Int
    public var parameters: [Float]

    public init(shape: TransformerExitShape, depth: Int, parameters: [Float]) throws {
        guard depth >= 1, parameters.count == depth * shape.parameterCount else {
            throw TrainingError.shapeMismatch("\(parameters.count) parameters, \(depth) layers of shape \(shape) need \(max(depth, 0) * shape.parameterCount)")
        }
        self.shape = shape
        self.depth = depth
        self.parameters = parameters
    }

    public init(layers: [TransformerExitBlock]) throws {
        guard let first = layers.first, layers.allSatisfy({ $0.shape == first.shape }) else {
            throw TrainingError.shapeMismatch("a stacked exit block needs one or more layers of one shape")
        }
        shape = first.shape
        depth = layers.count
        parameters = layers.flatMap(\.parameters)
    }

    /// Copies of the model's layers `sources`, in that order (dequantized to f32).
    public init(copying sources: [Int], of file: GGUFFile) throws {
        try self.init(layers: sources.map { try TransformerExitBlock(copying: $0, of: file) })
    }

    /// The layers, each as a block of its own.
    public var layers: [TransformerExitBlock] { (0..<depth).map(layer) }

    /// Multiply-adds per token of every layer's projections.
    public var multiplyAddsPerToken: Int { depth * shape.multiplyAddsPerToken }

    /// Whether the layers have the geometry of `config`'s (the engine runs them with that config).
    public func fits(_ config: ModelConfig) -> Bool { layer(0).fits(config) }

    /// Where the layers' norm weights sit in `parameters`: kept exact by q5 storage.
    public var normParameters: [Range<Int>] {
        let n = shape.parameterCount
        return (0..<depth).flatMap { i in
            [shape.attentionNorm, shape.ffnNorm].map { ($0.lowerBound + i * n)..<($0.upperBound + i * n) }
        }
    }

    /// The block as a file storing it at `precision` gives it back: its norms kept exact.
    public func rounded(to precision: WeightPrecision) -> Self {
        var block = self
        block.parameters = precision.rounded(parameters, keeping: normParameters)
        return block
    }

    /// Layer `index` of the stack as a block of its own.
    public func layer(_ index: Int) -> TransformerExitBlock {
        let n = shape.parameterCount
        // The shape and count match by construction.
        return try! TransformerExitBlock(shape: shape, parameters: Array(parameters[index * n..<(index + 1) * n]))
    }
}

/// Forward and backward of a stacked block over whole sequences: each layer's `TransformerPass` in
/// turn, the gradient handed down from each layer's input to the layer below.
package final class StackedTransformerPass: @unchecked Sendable {
    private let passes: [TransformerPass]
    private let shape: TransformerExitShape
    private let dUpper: FloatBuffer, dLower: FloatBuffer

    package init(shape: TransformerExitShape, depth: Int, rows: Int) {
        self.shape = shape
        passes = (0..<depth).map { _ in TransformerPass(shape: shape, rows: rows) }
        dUpper = FloatBuffer(max(rows, 1) * shape.width)
        dLower = FloatBuffer(max(rows, 1) * shape.width)
    }

    package var z: UnsafeMutablePointer<Float> { passes[passes.count - 1].z }

    package func forward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, segments: [Range<Int>],
                         pool: ThreadPool) {
        var input = UnsafePointer(h)
        for (i, pass) in passes.enumerated() {
            pass.forward(parameters: p + i * shape.parameterCount, hidden: input, segments: segments, pool: pool)
            input = UnsafePointer(pass.z)
        }
    }

    package func backward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, dz: UnsafePointer<Float>,
                          rows n: Int, gradient g: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        var upper = dz
        var buffers = (dUpper, dLower)
        for i in stride(from: passes.count - 1, through: 0, by: -1) {
            let input = i == 0 ? h : UnsafePointer(passes[i - 1].z)
            let down = i == 0 ? nil : buffers.1.pointer
            passes[i].backward(parameters: p + i * shape.parameterCount, hidden: input, dz: upper, rows: n,
                               gradient: g + i * shape.parameterCount, inputGradient: down, pool: pool)
            if let down { upper = UnsafePointer(down) }
            buffers = (buffers.1, buffers.0)
        }
    }
}
