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

    /// `rowType` re-quantizes the head's rows (nil: the head's own format): every check reads them, so
    /// fewer bits a weight make every check cheaper.
    public init(tokens: [Int], model: LlamaModel, rowType: GGMLType? = nil) throws {
        self.tokens = tokens
        rows = try model.headRows(tokens, as: rowType)
    }

    /// Bytes of the shortlist's head rows, as packed.
    public var weightBytes: Int { rows.packedBytes }

    /// The format of the shortlist's head rows.
    public var rowType: GGMLType { rows.type }

    /// The shortlist's logits for the rows of `z` (row-major, `tokens` order in each row). Their softmax's top
    /// probability bounds the full vocabulary's from above.
    public func logits(_ z: HiddenStates, model: LlamaModel) throws -> [Float] {
        rows.apply(try model.finalNorm(z), pool: model.pool)
    }

    /// Shortlist logits laid out over the whole vocabulary, every other token 1000 nats below the lowest
    /// shortlisted one: a sampler then draws from the shortlist's distribution (finite values keep the
    /// vectorised exp exact at 0).
    public func spread(_ shortLogits: [Float], vocabularySize: Int) -> [Float] {
        precondition(shortLogits.count == tokens.count, "one logit per shortlisted token")
        var logits = [Float](repeating: (shortLogits.min() ?? 0) - 1000, count: vocabularySize)
        for (token, logit) in zip(tokens, shortLogits) { logits[token] = logit }
        return logits
    }
}

/// Max softmax probability: the exit's confidence.
public func confidence(of logits: [Float]) -> Float {
    guard let maxLogit = logits.max() else { return 0 }
    return expf(maxLogit - logSumExp(logits))
}
