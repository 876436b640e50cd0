import Foundation
import LLM

/// A trainable exit block (issue 6, block (a)): z = base(h) + W2 silu(W1 rmsnorm(h; g)), with
/// base(h) = h, or A h + b when an adapter is given. The exit's logits are then the model's own
/// head(rmsnorm_final(z)), so the block is a drop-in replacement for a linear exit adapter.
/// W2 starts at zero, so an untrained block is exactly its base: the logit lens, or the adapter.
public struct ExitBlock: Sendable, Equatable {
    public let shape: ExitBlockShape
    /// All parameters, laid out as `shape` says.
    public var parameters: [Float]

    public init(shape: ExitBlockShape, parameters: [Float]) throws {
        guard parameters.count == shape.parameterCount else {
            throw TrainingError.shapeMismatch("\(parameters.count) parameters, shape needs \(shape.parameterCount)")
        }
        self.shape = shape
        self.parameters = parameters
    }

    /// The block as a file storing it at `precision` gives it back.
    public func rounded(to precision: WeightPrecision) -> Self {
        var block = self
        block.parameters = precision.rounded(parameters)
        return block
    }

    /// A fresh block: g = 1, W1 ~ N(0, 1/d) from `seed`, W2 = 0, and the adapter if given
    /// (matrix d x d row-major, bias d; a missing half defaults to identity / zero).
    public init(width: Int, hiddenWidth: Int, epsilon: Float = 1e-5, adapterMatrix: [Float]? = nil,
                adapterBias: [Float]? = nil, seed: UInt64 = 0) throws {
        let hasAdapter = adapterMatrix != nil || adapterBias != nil
        let shape = ExitBlockShape(width: width, hiddenWidth: hiddenWidth, hasAdapter: hasAdapter, epsilon: epsilon)
        var p = [Float](repeating: 0, count: shape.parameterCount)
        for i in shape.norm { p[i] = 1 }
        var rng = Xoshiro256StarStar(seed: seed)
        let scale = 1 / Float(width).squareRoot()
        for i in shape.up { p[i] = Float(rng.nextNormal()) * scale }
        if hasAdapter {
            if let m = adapterMatrix {
                guard m.count == width * width else { throw TrainingError.shapeMismatch("adapter matrix has \(m.count) values, expected \(width * width)") }
                p.replaceSubrange(shape.adapterMatrix, with: m)
            } else {
                for i in 0..<width { p[shape.adapterMatrix.lowerBound + i * width + i] = 1 }
            }
            if let b = adapterBias {
                guard b.count == width else { throw TrainingError.shapeMismatch("adapter bias has \(b.count) values, expected \(width)") }
                p.replaceSubrange(shape.adapterBias, with: b)
            }
        }
        try self.init(shape: shape, parameters: p)
    }

    public var norm: ArraySlice<Float> { parameters[shape.norm] }
    public var up: ArraySlice<Float> { parameters[shape.up] }
    public var down: ArraySlice<Float> { parameters[shape.down] }
    public var adapterMatrix: ArraySlice<Float>? { shape.hasAdapter ? parameters[shape.adapterMatrix] : nil }
    public var adapterBias: ArraySlice<Float>? { shape.hasAdapter ? parameters[shape.adapterBias] : nil }

    /// z for `hidden` (rows x width): the state to feed the model's final norm and head
    /// (e.g. `LlamaModel.logits(HiddenStates(values: z, width: d))`). Per-token callers should keep
    /// an `ExitBlockRunner` instead, which reuses its buffers.
    public func apply(_ hidden: [Float], pool: ThreadPool) -> [Float] {
        ExitBlockRunner(block: self, pool: pool).apply(HiddenStates(values: hidden, width: shape.width)).values
    }
}

extension Xoshiro256StarStar {
    /// A standard normal sample (Box-Muller), for reproducible initialisation.
    mutating func nextNormal() -> Double {
        let u1 = max(nextUnitDouble(), 1e-300)
        let u2 = nextUnitDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
