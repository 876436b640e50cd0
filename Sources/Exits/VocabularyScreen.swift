import Foundation
import LLM

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
