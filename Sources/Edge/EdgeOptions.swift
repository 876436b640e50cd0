import CollabCore
import LLM

/// How the edge generates: standalone (exits only, no network) or collaborative (CE-CoLLM).
public struct EdgeOptions: Sendable {
    public enum Mode: String, Sendable { case standalone, collaborative }

    public var mode: Mode
    /// Exit heads below the split, with their thresholds.
    public var exits: [ExitHead]
    /// The head used for the deepest exit at the split (standalone and degraded tokens).
    public var splitHead: ExitHead?
    public var wire: WireFormat = .f16
    public var sampling: SamplingParameters = .greedy
    public var maxTokens = 128
    /// KV positions the session may use (edge cache and the cloud's reservation).
    public var maxPositions = 2048
    /// First wait before reconnecting to a cloud that failed; doubles up to `maxBackoffSeconds`.
    public var initialBackoffSeconds = 0.5
    public var maxBackoffSeconds = 8.0

    public init(mode: Mode, exits: [ExitHead] = [], splitHead: ExitHead? = nil) {
        self.mode = mode
        self.exits = exits
        self.splitHead = splitHead
    }
}

/// What one edge generation produced and how each token was decided.
public struct EdgeGenerationResult: Sendable {
    public var text: String
    public var tokens: [Int]
    public var logprobs: [Float]
    /// Per token: "edge:<layer>", "cloud" or "edge:<layer>:degraded".
    public var sources: [String]
    /// Per token: seconds from the start of generation until it was decided (latency percentiles).
    public var tokenSeconds: [Double] = []
    public var promptTokens: Int
    public var stopReason: GenerationResult.StopReason
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var edgeSeconds = 0.0
    public var cloudSeconds = 0.0
    public var networkSeconds = 0.0
    public var traffic = LinkTraffic()
    public var reconnects = 0
}
