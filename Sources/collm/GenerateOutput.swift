import CollabCore
import Edge
import Exits
import LLM

/// The `generate --json` object (README, "Commands").
struct GenerateOutput: Codable {
    struct Timings: Codable {
        var prefill, decode, total, edge, cloud, network: Double
    }

    var text: String
    var tokens: [Int]
    var prompt_tokens: Int
    var model_path: String
    var mode: String
    var sources: [String]
    var logprobs: [Float]
    var stop_reason: String
    var timings: Timings
    var bytes_up = 0
    var bytes_down = 0
    var round_trips = 0
    /// The cloud used: HOST:PORT, "embedded" (in this process), or nil (local and edge modes).
    var cloud: String?
    /// Calibration file used by edge and collab (nil: logit lens or none).
    var calibration: String?
    var exits: ExitReport?
    /// Spec mode: VERIFY rounds, draft tokens sent, draft tokens the cloud accepted.
    var speculation: SpeculationReport?
    /// Seconds from the start until each token was decided (edge and collab modes; absent otherwise).
    var token_seconds: [Double]?
    /// Collab and spec modes: how the session survived cloud failures.
    var failover: FailoverReport?

    init(text: String, tokens: [Int], promptTokens: Int, modelPath: String, sources: [String], logprobs: [Float],
         stopReason: String) {
        self.text = text
        self.tokens = tokens
        prompt_tokens = promptTokens
        model_path = modelPath
        mode = ""
        self.sources = sources
        self.logprobs = logprobs
        stop_reason = stopReason
        timings = Timings(prefill: 0, decode: 0, total: 0, edge: 0, cloud: 0, network: 0)
    }

    init(result: GenerationResult, modelPath: String) {
        self.init(text: result.text, tokens: result.tokens, promptTokens: result.promptTokens, modelPath: modelPath,
                  sources: Array(repeating: "local", count: result.tokens.count), logprobs: result.logprobs,
                  stopReason: result.stopReason.rawValue)
        timings = Timings(prefill: result.prefillSeconds, decode: result.decodeSeconds, total: result.totalSeconds,
                          edge: 0, cloud: 0, network: 0)
    }
}

/// How the exits behaved in one edge or collab run.
struct ExitReport: Codable {
    /// Configured thresholds, and the final ones (they move with --latency-aware).
    var thresholds: [String: Float]
    var final_thresholds: [String: Float]
    var rtt_ms: Double?
    /// Exit checks, and how many needed the full-vocabulary head (the rest were screened out cheaply).
    var checks: Int
    var full_head_evaluations: Int
    /// Share of generated tokens decided on the edge.
    var edge_rate: Double

    init(_ r: EdgeGenerationResult, heads: [ExitHead]) {
        thresholds = Dictionary(heads.map { (String($0.layer), $0.threshold) }, uniquingKeysWith: { a, _ in a })
        final_thresholds = Dictionary(r.finalThresholds.map { (String($0.key), $0.value) }, uniquingKeysWith: { a, _ in a })
        rtt_ms = r.roundTripSeconds.map { $0 * 1000 }
        checks = r.exitStats.checks
        full_head_evaluations = r.exitStats.fullHeads
        let edge = r.sources.filter { $0.hasPrefix("edge:") && !$0.hasSuffix(":degraded") }.count
        edge_rate = r.sources.isEmpty ? 0 : Double(edge) / Double(r.sources.count)
    }
}

struct SpeculationReport: Codable {
    var rounds: Int
    var drafted: Int
    var accepted: Int
}

/// Reconnects, RESYNCs (the session reopened on a replica that did not know it) and their cost.
struct FailoverReport: Codable {
    /// --on-cloud-loss: degrade or wait.
    var policy: String
    var reconnects: Int
    var resyncs: Int
    /// Upload-log bytes sent to catch a replica up after reconnects (the whole log after a RESYNC).
    var replay_bytes: Int
    /// Per outage the cloud came back from: seconds from the loss to its next answer.
    var recovery_seconds: [Double]
    /// Seconds generation was held waiting for the cloud.
    var wait_seconds: Double
}
