import LLM

/// Test data from the engine's seeded generator, so that test failures reproduce.
extension SplitMix64 {
    public init(_ seed: UInt64) { self.init(seed: seed) }

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
