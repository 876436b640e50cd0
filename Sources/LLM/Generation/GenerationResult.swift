/// What one generation produced and what it cost.
public struct GenerationResult: Sendable, Codable {
    public enum StopReason: String, Sendable, Codable {
        case endOfSequence = "eos"
        case maxTokens = "length"
        case contextFull = "context"
    }

    public var text: String
    public var tokens: [Int]
    /// Log-probability of each generated token under the (unfiltered) model distribution.
    public var logprobs: [Float]
    public var promptTokens: Int
    public var stopReason: StopReason
    public var prefillSeconds: Double
    public var decodeSeconds: Double

    public var totalSeconds: Double { prefillSeconds + decodeSeconds }
}
