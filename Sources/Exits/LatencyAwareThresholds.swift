import Foundation

/// Latency-aware exits: when the cloud is far, a cloud answer costs more, so exits may accept a
/// little less confidence; when it is near, they ask for more. The threshold moves by `slope` per
/// doubling of the round trip relative to `referenceSeconds`, within the user's bounds.
public struct LatencyAwareThresholds: Sendable, Equatable {
    public var minimum: Float
    public var maximum: Float
    public var referenceSeconds: Double
    public var slope: Float

    public init(minimum: Float, maximum: Float, referenceSeconds: Double = 0.02, slope: Float = 0.05) {
        precondition(minimum <= maximum && referenceSeconds > 0, "latency-aware bounds")
        self.minimum = minimum
        self.maximum = maximum
        self.referenceSeconds = referenceSeconds
        self.slope = slope
    }

    public func threshold(base: Float, roundTrip: Double?) -> Float {
        guard let roundTrip, roundTrip > 0 else { return min(max(base, minimum), maximum) }
        let shift = slope * Float(log2(roundTrip / referenceSeconds))
        return min(max(base - shift, minimum), maximum)
    }
}
