/// How the next token is chosen from a vector of logits.
///
/// Defaults reproduce greedy decoding: `temperature == 0` means argmax, and every filter starts switched off
/// (`topK == 0`, `topP == 1`, `minP == 0`, `repetitionPenalty == 1`). The filters follow llama.cpp's meaning and
/// order (see `Sampler`). JSON keys are snake_case (`top_k`, `top_p`, `min_p`, `repetition_penalty`,
/// `repeat_last_n`, `seed`); missing keys take their defaults, so `{}` decodes to greedy.
public struct SamplingParameters: Sendable, Codable, Equatable, Hashable {
    /// Softmax temperature; 0 selects greedy (argmax) decoding.
    public var temperature: Float
    /// Keep only the `topK` most likely tokens; 0 disables the filter.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches `topP`; 1 disables the filter.
    public var topP: Float
    /// Drop tokens whose probability is below `minP` times the most likely token's; 0 disables the filter.
    public var minP: Float
    /// llama.cpp-style repetition penalty (positive logits divided, negative multiplied); 1 disables it.
    public var repetitionPenalty: Float
    /// How many of the most recent history tokens the repetition penalty looks at (0 = none, -1 = all).
    public var repeatLastN: Int
    /// Random seed; `nil` draws a fresh one, so runs differ.
    public var seed: UInt64?

    public init(
        temperature: Float = 0,
        topK: Int = 0,
        topP: Float = 1,
        minP: Float = 0,
        repetitionPenalty: Float = 1,
        repeatLastN: Int = 64,
        seed: UInt64? = nil
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.repeatLastN = repeatLastN
        self.seed = seed
    }

    /// Greedy decoding with no penalties.
    public static let greedy = SamplingParameters()

    /// True when the choice is deterministic argmax (after any repetition penalty).
    public var isGreedy: Bool { temperature == 0 || topK == 1 }

    /// Throws `SamplingParametersError` naming the first out-of-range field.
    public func validate() throws {
        func fail(_ field: String, _ message: String) -> SamplingParametersError {
            SamplingParametersError(field: field, message: message)
        }
        guard temperature.isFinite, temperature >= 0 else {
            throw fail("temperature", "temperature must be a finite number >= 0 (0 = greedy), got \(temperature)")
        }
        guard topK >= 0 else {
            throw fail("top_k", "top_k must be >= 0 (0 = off), got \(topK)")
        }
        guard topP.isFinite, topP > 0, topP <= 1 else {
            throw fail("top_p", "top_p must be in (0, 1] (1 = off), got \(topP)")
        }
        guard minP.isFinite, minP >= 0, minP <= 1 else {
            throw fail("min_p", "min_p must be in [0, 1] (0 = off), got \(minP)")
        }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw fail(
                "repetition_penalty",
                "repetition_penalty must be a finite number > 0 (1 = off), got \(repetitionPenalty)")
        }
        guard repeatLastN >= -1 else {
            throw fail("repeat_last_n", "repeat_last_n must be >= -1 (-1 = whole history, 0 = off), got \(repeatLastN)")
        }
    }

    private enum CodingKeys: String, CodingKey {
        case temperature
        case topK = "top_k"
        case topP = "top_p"
        case minP = "min_p"
        case repetitionPenalty = "repetition_penalty"
        case repeatLastN = "repeat_last_n"
        case seed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SamplingParameters()
        self.init(
            temperature: try c.decodeIfPresent(Float.self, forKey: .temperature) ?? d.temperature,
            topK: try c.decodeIfPresent(Int.self, forKey: .topK) ?? d.topK,
            topP: try c.decodeIfPresent(Float.self, forKey: .topP) ?? d.topP,
            minP: try c.decodeIfPresent(Float.self, forKey: .minP) ?? d.minP,
            repetitionPenalty: try c.decodeIfPresent(Float.self, forKey: .repetitionPenalty) ?? d.repetitionPenalty,
            repeatLastN: try c.decodeIfPresent(Int.self, forKey: .repeatLastN) ?? d.repeatLastN,
            seed: try c.decodeIfPresent(UInt64.self, forKey: .seed))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(topK, forKey: .topK)
        try c.encode(topP, forKey: .topP)
        try c.encode(minP, forKey: .minP)
        try c.encode(repetitionPenalty, forKey: .repetitionPenalty)
        try c.encode(repeatLastN, forKey: .repeatLastN)
        try c.encodeIfPresent(seed, forKey: .seed)
    }
}

/// An out-of-range sampling parameter. `field` uses the JSON / CLI spelling (`top_p`, ...).
public struct SamplingParametersError: Error, CustomStringConvertible, Equatable, Sendable {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "invalid sampling parameters: \(message)" }
}
