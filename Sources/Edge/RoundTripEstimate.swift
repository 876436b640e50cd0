/// An exponentially weighted round-trip estimate (the first sample is taken as is).
struct RoundTripEstimate {
    private(set) var seconds: Double?
    var weight = 0.25

    mutating func record(_ sample: Double) {
        let sample = max(0, sample)
        seconds = seconds.map { $0 + weight * (sample - $0) } ?? sample
    }
}
