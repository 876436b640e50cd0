import CollabCore
import Exits
import LLM

/// How the edge generates in its mode (`.edge`, `.collab` or `.spec`).
public struct EdgeOptions: Sendable {
    public var mode: GenerationMode
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

    public init(mode: GenerationMode, exits: [ExitHead] = [], splitHead: ExitHead? = nil) {
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
