import Exits

/// Per-token outcomes of one exit on some tokens: its confidence and whether its top-1 equals the
/// full model's. Everything a threshold decision needs.
public struct ExitOutcomes: Sendable {
    public var confidence: [Float] = []
    public var agrees: [Bool] = []

    public init() {}

    public var count: Int { confidence.count }

    /// The outcomes of the tokens at `indices`.
    public func subset(_ indices: [Int]) -> ExitOutcomes {
        var part = ExitOutcomes()
        part.confidence = indices.map { confidence[$0] }
        part.agrees = indices.map { agrees[$0] }
        return part
    }

    /// Top-1 agreement with the full model over all tokens.
    public var agreement: Double { count == 0 ? 0 : Double(agrees.filter { $0 }.count) / Double(count) }

    /// (exit rate, agreement of exited tokens) at `threshold`.
    public func point(threshold: Double) -> ExitCalibration.CurvePoint {
        var exited = 0, right = 0
        for (c, a) in zip(confidence, agrees) where Double(c) >= threshold {
            exited += 1
            if a { right += 1 }
        }
        return .init(threshold: threshold, exitRate: count == 0 ? 0 : Double(exited) / Double(count),
                     agreement: exited == 0 ? 1 : Double(right) / Double(exited))
    }

    /// The curve at thresholds 0.5, 0.55, ..., 0.95 and 0.99.
    public var curve: [ExitCalibration.CurvePoint] {
        (Array(stride(from: 0.5, through: 0.951, by: 0.05)) + [0.99]).map { point(threshold: $0) }
    }

    /// Tokens sorted by confidence, most confident first, with the running count of agreements.
    private var ranked: [(confidence: Float, agreed: Int)] {
        let order = confidence.indices.sorted { confidence[$0] > confidence[$1] }
        var agreed = 0
        return order.map { i in
            if agrees[i] { agreed += 1 }
            return (confidence[i], agreed)
        }
    }

    /// The largest share of tokens that can exit (by confidence) while at least `precision` of the
    /// exited ones agree with the full model. Ties in confidence exit together.
    public func exitRate(atPrecision precision: Double) -> Double {
        guard let k = bestPrefix(precision: precision, minimum: 1) else { return 0 }
        return Double(k) / Double(count)
    }

    /// The lowest threshold whose exited tokens reach `precision`, among thresholds that let at
    /// least `minimum` tokens exit; above 1 (never exit) when none does.
    public func threshold(forPrecision precision: Double, minimum: Int) -> Float {
        guard let k = bestPrefix(precision: precision, minimum: minimum) else { return 1.01 }
        return ranked[k - 1].confidence
    }

    private func bestPrefix(precision: Double, minimum: Int) -> Int? {
        let r = ranked
        var best: Int?
        for k in stride(from: r.count, through: max(1, minimum), by: -1) {
            // Only cut between different confidences: a threshold cannot split ties.
            if k < r.count, r[k].confidence == r[k - 1].confidence { continue }
            if Double(r[k - 1].agreed) >= precision * Double(k) {
                best = k
                break
            }
        }
        return best
    }

    /// Evaluation record for the calibration file.
    public var evaluation: ExitCalibration.Evaluation {
        .init(agreement: agreement,
              exitRateAtPrecision: ["0.8": exitRate(atPrecision: 0.8), "0.9": exitRate(atPrecision: 0.9)],
              curve: curve)
    }
}
