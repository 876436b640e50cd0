/// What one generation produced, in any mode, and what it cost: the one result type every token
/// loop returns (through `GenerationTranscript`).
public struct GenerationResult: Sendable {
    public enum StopReason: String, Sendable, Codable {
        case endOfSequence = "eos"
        case maxTokens = "length"
        case contextFull = "context"
    }

    public var text = ""
    public var tokens: [Int] = []
    /// Log-probability of each generated token under the (unfiltered) distribution that chose it.
    public var logprobs: [Float] = []
    /// Who decided each token.
    public var sources: [TokenSource] = []
    /// Per token: seconds from the start of generation until it was decided (latency percentiles).
    public var tokenSeconds: [Double] = []
    public var promptTokens: Int
    public var stopReason = StopReason.maxTokens
    /// Until the first token was decided.
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    /// Split modes: compute on the edge, and compute the cloud reported.
    public var edgeSeconds = 0.0
    public var cloudSeconds = 0.0
    public var traffic = LinkTraffic()

    public init(promptTokens: Int) {
        self.promptTokens = promptTokens
    }

    public var totalSeconds: Double { prefillSeconds + decodeSeconds }

    /// The rest of the time spent waiting on the cloud: the link's waits less the cloud's compute.
    public var networkSeconds: Double { max(0, traffic.networkSeconds - cloudSeconds) }
}
