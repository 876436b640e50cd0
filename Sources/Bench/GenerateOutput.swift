import CollabCore
import Edge
import Exits
import LLM

/// The `generate --json` object (README, "Commands").
package struct GenerateOutput: Codable {
    package struct Timings: Codable {
        package var prefill = 0.0, decode = 0.0, total = 0.0, edge = 0.0, cloud = 0.0, network = 0.0
    }

    package var text: String
    package var tokens: [Int]
    package var prompt_tokens: Int
    package var model_path: String
    package var mode = ""
    package var sources: [TokenSource]
    package var logprobs: [Float]
    package var stop_reason: String
    package var timings: Timings
    package var bytes_up: Int
    package var bytes_down: Int
    package var round_trips: Int
    /// The cloud used: HOST:PORT, "embedded" (in this process), or nil (local and edge modes).
    package var cloud: String?
    /// Calibration file used by edge and collab (nil: logit lens or none).
    package var calibration: String?
    package var exits: ExitReport?
    /// Spec mode: VERIFY rounds, draft tokens sent, draft tokens the cloud accepted.
    package var speculation: SpeculationReport?
    /// Seconds from the start until each token was decided (edge and collab modes; absent otherwise).
    package var token_seconds: [Double]?
    /// Collab and spec modes: how the session survived cloud failures.
    package var failover: FailoverReport?

    package init(result: GenerationResult, modelPath: String) {
        (text, tokens, prompt_tokens, model_path) = (result.text, result.tokens, result.promptTokens, modelPath)
        (sources, logprobs, stop_reason) = (result.sources, result.logprobs, result.stopReason.rawValue)
        timings = Timings(prefill: result.prefillSeconds, decode: result.decodeSeconds, total: result.totalSeconds,
                          edge: result.edgeSeconds, cloud: result.cloudSeconds, network: result.networkSeconds)
        (bytes_up, bytes_down, round_trips) = (result.traffic.bytesUp, result.traffic.bytesDown, result.traffic.roundTrips)
    }
}

/// How the exits behaved in one edge or collab run.
package struct ExitReport: Codable {
    /// Configured thresholds, and the final ones (they move with --latency-aware).
    package var thresholds: [String: Float]
    package var final_thresholds: [String: Float]
    package var rtt_ms: Double?
    /// Exit checks, and how many needed the full-vocabulary head (the rest were screened out cheaply).
    package var checks: Int
    package var full_head_evaluations: Int
    /// Share of generated tokens decided on the edge.
    package var edge_rate: Double

    package init(_ r: EdgeGeneration, heads: [ExitHead]) {
        thresholds = Dictionary(heads.map { (String($0.layer), $0.threshold) }, uniquingKeysWith: { a, _ in a })
        final_thresholds = Dictionary(r.finalThresholds.map { (String($0.key), $0.value) }, uniquingKeysWith: { a, _ in a })
        rtt_ms = r.roundTripSeconds.map { $0 * 1000 }
        checks = r.exitStats.checks
        full_head_evaluations = r.exitStats.fullHeads
        edge_rate = r.result.sources.edgeShare
    }
}

package struct SpeculationReport: Codable {
    package var rounds: Int
    package var drafted: Int
    package var accepted: Int

    package init(_ s: SpeculationStatistics) {
        (rounds, drafted, accepted) = (s.rounds, s.drafted, s.accepted)
    }
}

/// Reconnects, RESYNCs (the session reopened on a replica that did not know it) and their cost.
package struct FailoverReport: Codable {
    /// --on-cloud-loss: degrade or wait.
    package var policy: String
    package var reconnects: Int
    package var resyncs: Int
    /// Upload-log bytes sent to catch a replica up after reconnects (the whole log after a RESYNC).
    package var replay_bytes: Int
    /// Per outage the cloud came back from: seconds from the loss to its next answer.
    package var recovery_seconds: [Double]
    /// Seconds generation was held waiting for the cloud.
    package var wait_seconds: Double

    package init(policy: CloudLossPolicy, _ f: FailoverStatistics) {
        self.policy = policy.rawValue
        (reconnects, resyncs, replay_bytes) = (f.reconnects, f.resyncs, f.replayBytes)
        (recovery_seconds, wait_seconds) = (f.recoverySeconds, f.cloudWaitSeconds)
    }
}
