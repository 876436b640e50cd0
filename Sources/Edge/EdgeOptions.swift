import CollabCore
import Exits
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
    /// What the edge does when the cloud stops answering (collaborative and speculative modes).
    public var onCloudLoss: CloudLossPolicy = .degrade
    /// With `.wait`: the longest hold per outage before the edge degrades.
    public var cloudWaitSeconds = 30.0
    /// Told when the cloud stops and starts answering, to announce degradation episodes.
    public var outageMonitor: CloudOutageMonitor?
    /// When set, exit thresholds follow the measured cloud round trip (collaborative mode).
    public var latencyAware: LatencyAwareThresholds?
    /// Longest draft per VERIFY (speculative mode).
    public var maxDraftTokens = 8
    /// Speculative mode without an exit at the split: the logit lens there drafts at this confidence.
    public var draftThreshold: Float = 0.5

    public init(mode: Mode, exits: [ExitHead] = [], splitHead: ExitHead? = nil) {
        self.mode = mode
        self.exits = exits
        self.splitHead = splitHead
    }
}

/// What the edge does when the cloud (every replica behind a balancer) stops answering.
public enum CloudLossPolicy: String, Sendable, CaseIterable {
    /// Go on at the edge at once: tokens are decided by the deepest exit and marked degraded.
    case degrade
    /// Hold generation, reconnecting with backoff (a new replica answers RESYNC and gets the upload
    /// log replayed), up to `cloudWaitSeconds` per outage; then degrade. Lossless when a replica
    /// answers in time.
    case wait
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
    /// Reconnects that found the session gone (another replica, or a restarted one) and reopened it.
    public var resyncs = 0
    /// Upload-log bytes sent to catch the cloud up after reconnects (payload only, without framing).
    public var replayBytes = 0
    /// Per outage that ended with the cloud answering again: seconds from the loss to that answer.
    public var recoverySeconds: [Double] = []
    /// Seconds generation was held waiting for the cloud (`.wait`).
    public var cloudWaitSeconds = 0.0
    public var exitStats = ExitStatistics()
    public var speculation = SpeculationStatistics()
    /// Smoothed network round trip of INFER (without the cloud's compute), when measured.
    public var roundTripSeconds: Double?
    /// Each exit's threshold at the end (differs from the configured one with latency-aware exits).
    public var finalThresholds: [Int: Float] = [:]

    public init(text: String, tokens: [Int], logprobs: [Float], sources: [String], promptTokens: Int,
                stopReason: GenerationResult.StopReason) {
        self.text = text
        self.tokens = tokens
        self.logprobs = logprobs
        self.sources = sources
        self.promptTokens = promptTokens
        self.stopReason = stopReason
    }
}

/// How often exits were checked, and how many checks needed the full-vocabulary head.
public struct ExitStatistics: Sendable, Equatable {
    public var checks = 0
    public var fullHeads = 0
}

/// Speculative mode: drafts sent, draft tokens, and how many the cloud accepted.
public struct SpeculationStatistics: Sendable, Equatable {
    public var rounds = 0
    public var drafted = 0
    public var accepted = 0
}
