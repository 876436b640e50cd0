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
    /// What the confidence is measured over; `.shortlist` needs `screen` (its shortlist).
    public let rule: ExitRule

    public init(layer: Int, threshold: Float, adapter: (any ExitTransform)? = nil, screen: VocabularyScreen? = nil,
                rule: ExitRule = .full) {
        precondition(rule == .full || screen != nil, "an exit deciding over the shortlist needs its screen")
        self.layer = layer
        self.threshold = threshold
        self.adapter = adapter
        self.screen = screen
        self.rule = rule
    }

    /// Bytes of weights a check reads: the adapter's and the shortlist's head rows. A decided token under
    /// the full rule also reads the whole head.
    public var checkWeightBytes: Int { (adapter?.weightBytes ?? 0) + (screen?.weightBytes ?? 0) }

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
    /// With a screen, most unconfident rows are rejected without the full-vocabulary head; under
    /// `.shortlist` the full head is never evaluated.
    public func decide(_ hidden: HiddenStates, model: LlamaModel) throws -> ExitDecision {
        guard threshold <= 1 else { return .notConfident(screened: true) }
        let z = try adapted(hidden, pool: model.pool)
        if let screen {
            let shortLogits = try screen.logits(z, model: model)
            guard confidence(of: shortLogits) >= threshold else { return .notConfident(screened: true) }
            if rule == .shortlist {
                return .confident(screen.spread(shortLogits, vocabularySize: model.config.vocabularySize), fullHead: false)
            }
        }
        let logits = try model.logits(z)
        return confidence(of: logits) >= threshold ? .confident(logits, fullHead: true) : .notConfident(screened: false)
    }
}

/// The outcome of one exit check.
public enum ExitDecision: Sendable {
    /// `fullHead`: the logits came from the full-vocabulary head (else from the shortlist, see `ExitRule`).
    case confident([Float], fullHead: Bool)
    /// `screened`: rejected by the cheap shortlist check, without the full head.
    case notConfident(screened: Bool)
}
