import ExitTraining
import Foundation
import LLM

/// An early exit after layer `layer`: logits = head(norm_final(A h + b)). Without an adapter it is
/// the "logit lens" (A = I, b = 0); fitted adapters come from calibration. The decision rule (max
/// softmax probability >= threshold) does not depend on which adapter is loaded.
public struct ExitHead: Sendable {
    public let layer: Int
    /// Emit when the top probability reaches this (above 1: never).
    public var threshold: Float
    /// What maps the layer's state to the head's input: a fitted affine adapter or a trained block.
    public let adapter: (any ExitTransform)?
    /// Optional cheap pre-check over a vocabulary shortlist (see `VocabularyScreen`).
    public var screen: VocabularyScreen?

    public init(layer: Int, threshold: Float, adapter: (any ExitTransform)? = nil, screen: VocabularyScreen? = nil) {
        self.layer = layer
        self.threshold = threshold
        self.adapter = adapter
        self.screen = screen
    }

    /// The adapted last row of `hidden`: what the final norm and head read. A sequence block
    /// answers for its last observed position instead (the caller observed `hidden` before).
    public func adapted(_ hidden: HiddenStates, pool: ThreadPool) throws -> HiddenStates {
        if let sequence = adapter as? any SequenceExitTransform { return try sequence.applyLast() }
        let last = hidden.rows(hidden.rows - 1..<hidden.rows)
        return adapter?.apply(last, pool: pool) ?? last
    }

    /// Logits of the exit for the last row of `hidden`, through `model`'s final norm and head.
    public func logits(for hidden: HiddenStates, model: LlamaModel) throws -> [Float] {
        try model.logits(try adapted(hidden, pool: model.pool))
    }

    /// Rows at positions `position...` reached this exit's layer: a sequence block takes them into
    /// its cache (every position must be observed, once, in order); other adapters need nothing.
    public func observe(_ hidden: HiddenStates, at position: Int) throws {
        try (adapter as? any SequenceExitTransform)?.observe(hidden, at: position)
    }

    /// Positions from `positions` on were dropped (rejected drafts): a sequence block forgets them too.
    public func truncate(to positions: Int) {
        (adapter as? any SequenceExitTransform)?.truncate(to: positions)
    }

    /// Whether the exit is confident for the last row of `hidden`, with the logits when it is.
    /// With a screen, most unconfident rows are rejected without the full-vocabulary head.
    public func decide(_ hidden: HiddenStates, model: LlamaModel) throws -> ExitDecision {
        guard threshold <= 1 else { return .notConfident(screened: true) }
        let z = try adapted(hidden, pool: model.pool)
        if let screen, try screen.confidenceBound(z, model: model) < threshold {
            return .notConfident(screened: true)
        }
        let logits = try model.logits(z)
        return confidence(of: logits) >= threshold ? .confident(logits) : .notConfident(screened: false)
    }
}

/// The outcome of one exit check.
public enum ExitDecision: Sendable {
    case confident([Float])
    /// `screened`: rejected by the cheap shortlist check, without the full head.
    case notConfident(screened: Bool)
}

/// Maps an exit layer's hidden states to the head's input (z in head(norm(z))).
public protocol ExitTransform: AnyObject, Sendable {
    func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates
}

/// A trained residual MLP exit block (z = A h + b + W2 silu(W1 norm(h))), run with reused buffers.
/// One call at a time, like the edge model it serves.
public final class ExitMLP: ExitTransform, @unchecked Sendable {
    public let block: ExitBlock
    private var runner: ExitBlockRunner?

    public init(block: ExitBlock) { self.block = block }

    public func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates {
        if runner == nil || runner!.pool !== pool { runner = ExitBlockRunner(block: block, pool: pool) }
        return runner!.apply(hidden)
    }
}

/// A fitted affine map z = A h + b, held as an f32 matrix in the kernels' layout.
public final class ExitAdapter: ExitTransform, Sendable {
    public let matrix: [Float]
    public let bias: [Float]
    private let packed: WeightMatrix

    /// `matrix` is row-major width x width (z_i = sum_j A[i][j] h_j + b_i).
    public init(matrix: [Float], bias: [Float]) {
        precondition(!bias.isEmpty && matrix.count == bias.count * bias.count, "adapter shape")
        self.matrix = matrix
        self.bias = bias
        packed = WeightMatrix(float: matrix, rows: bias.count, columns: bias.count)
    }

    public var width: Int { bias.count }

    public func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates {
        var out = packed.apply(hidden, pool: pool)
        let w = width
        for r in 0..<hidden.rows {
            for i in 0..<w { out[r * w + i] += bias[i] }
        }
        return HiddenStates(values: out, width: w)
    }
}

/// Exact screening over a vocabulary shortlist S: for every token in S, its softmax restricted
/// to S is an upper bound of its true probability (a smaller denominator), so when the restricted
/// maximum is below the threshold no token of S can pass, and the full head is skipped. Only a
/// confident token outside S could be missed; calibration builds S from every token the model and
/// the exits predicted, and a test checks the decisions on held-out data are unchanged.
public final class VocabularyScreen: Sendable {
    public let tokens: [Int]
    private let rows: WeightMatrix

    public init(tokens: [Int], model: LlamaModel) throws {
        self.tokens = tokens
        rows = try model.headRows(tokens)
    }

    /// Upper bound of the top probability over the shortlist for the (single) row `z`.
    public func confidenceBound(_ z: HiddenStates, model: LlamaModel) throws -> Float {
        confidence(of: rows.apply(try model.finalNorm(z), pool: model.pool))
    }
}

/// Max softmax probability: the exit's confidence.
public func confidence(of logits: [Float]) -> Float {
    guard let maxLogit = logits.max() else { return 0 }
    return expf(maxLogit - logSumExp(logits))
}
