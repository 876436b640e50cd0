/// A deterministic generator (SplitMix64), so that test failures reproduce.
public struct SplitMix64 {
    public var state: UInt64
    public init(_ seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    /// Roughly normal (sum of uniforms), with occasional outliers like real weights.
    public mutating func weight() -> Float {
        var s: Float = 0
        for _ in 0..<4 { s += uniform() }
        if next() % 97 == 0 { s *= 6 }
        return s * 0.5
    }
    /// Roughly normal, no outliers (activations: keeps int8 quantization noise near 0.5%).
    public mutating func activation() -> Float {
        var s: Float = 0
        for _ in 0..<4 { s += uniform() }
        return s * 0.5
    }
}
