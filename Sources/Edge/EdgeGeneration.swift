import LLM

/// One edge generation: its result (tokens, sources, timings, traffic) and how the exits and the
/// cloud session behaved.
public struct EdgeGeneration: Sendable {
    public var result: GenerationResult
    public var exitStats = ExitStatistics()
    public var speculation = SpeculationStatistics()
    public var failover = FailoverStatistics()
    /// Smoothed network round trip of INFER (without the cloud's compute), when measured.
    public var roundTripSeconds: Double?
    /// Each exit's threshold at the end (differs from the configured one with latency-aware exits).
    public var finalThresholds: [Int: Float] = [:]

    public init(result: GenerationResult) {
        self.result = result
    }
}

/// How a session survived cloud failures.
public struct FailoverStatistics: Sendable, Equatable {
    public var reconnects = 0
    /// Reconnects that found the session gone (another replica, or a restarted one) and reopened it.
    public var resyncs = 0
    /// Upload-log bytes sent to catch the cloud up after reconnects (payload only, without framing).
    public var replayBytes = 0
    /// Per outage that ended with the cloud answering again: seconds from the loss to that answer.
    public var recoverySeconds: [Double] = []
    /// Seconds generation was held waiting for the cloud (`.wait`).
    public var cloudWaitSeconds = 0.0
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
