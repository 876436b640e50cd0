import Foundation
import LLM

/// An early exit after layer `layer`: logits = head(norm_final(A h + b)). Without an adapter it is
/// the "logit lens" (A = I, b = 0); fitted adapters come from calibration. The decision rule does not
/// depend on which adapter is loaded.
public struct ExitHead: Sendable {
    public let layer: Int
    /// Row-major width x width matrix, or nil for identity.
    public let matrix: [Float]?
    public let bias: [Float]?
    /// Emit when the top probability reaches this.
    public var threshold: Float

    public init(layer: Int, threshold: Float, matrix: [Float]? = nil, bias: [Float]? = nil) {
        self.layer = layer
        self.threshold = threshold
        self.matrix = matrix
        self.bias = bias
    }

    /// The adapted hidden state for the head.
    func adapt(_ hidden: HiddenStates) -> HiddenStates {
        guard matrix != nil || bias != nil else { return hidden }
        let w = hidden.width
        var out = [Float](repeating: 0, count: hidden.values.count)
        for r in 0..<hidden.rows {
            for i in 0..<w {
                var s: Float = bias?[i] ?? 0
                if let matrix {
                    for j in 0..<w { s += matrix[i * w + j] * hidden.values[r * w + j] }
                } else {
                    s += hidden.values[r * w + i]
                }
                out[r * w + i] = s
            }
        }
        return HiddenStates(values: out, width: w)
    }

    /// Logits of the exit for the last row of `hidden`, through `model`'s final norm and head.
    public func logits(for hidden: HiddenStates, model: LlamaModel) throws -> [Float] {
        try model.logits(adapt(hidden.rows(hidden.rows - 1..<hidden.rows)))
    }
}

/// Max softmax probability: the exit's confidence.
public func confidence(of logits: [Float]) -> Float {
    guard let maxLogit = logits.max() else { return 0 }
    var sum: Float = 0
    for v in logits { sum += expf(v - maxLogit) }
    return 1 / sum
}
