/// One generation in `bench collab`: what `collm generate --json` reported, what the link and the
/// cloud counted around it, and its accuracy against the full model.
package struct CollabRunRecord: Codable {
    package var prompt_id: String
    package var kind: String
    package var mode: String
    package var link: String?
    package var threshold: BenchThreshold?
    package var output: GenerateOutput
    /// Bytes the emulated link carried for this run, each way (TCP payload: gRPC + HTTP/2 framing included).
    package var link_bytes_up = 0
    package var link_bytes_down = 0
    /// Positions the cloud computed through its layers [s, L) and through the whole model (Health counters).
    package var cloud_split_rows = 0
    package var cloud_full_rows = 0
    /// Layer-token work: positions x transformer layers, on each side (exit heads excluded).
    package var edge_layer_work = 0
    package var cloud_layer_work = 0
    package var token_agreement = 0.0
    package var exact_match = false
    package var rouge_l = 0.0
    package var qa_correct: Bool?

    /// Decoding steps: generated tokens plus the end-of-sequence token when one was produced.
    package var steps: Int { output.tokens.count + (output.stop_reason == "eos" ? 1 : 0) }
    /// Positions the model ran over: the prompt and every generated token but the last.
    package var positions: Int { output.prompt_tokens + steps - 1 }
    package var cloudTokens: Int { output.sources.filter { $0 == .cloud }.count }
}

/// Means over the prompts of one configuration (mode x link x threshold): the comparison table's row.
package struct CollabSummary: Codable {
    package var mode: String
    package var link: String?
    package var threshold: BenchThreshold?
    package var prompts: Int
    package var tokens_per_response: Double
    package var total_s: Double
    package var edge_s: Double
    package var cloud_s: Double
    package var network_s: Double
    package var bytes_per_response: Double
    package var link_bytes_per_response: Double
    package var round_trips: Double
    /// Round trips per generated token (the edge's cost of the cloud's help).
    package var round_trips_per_token: Double
    /// Spec: draft tokens the cloud accepted per VERIFY round.
    package var accepted_per_verify: Double?
    package var cloud_token_share: Double
    package var cloud_work_share: Double
    package var token_agreement: Double
    package var exact_match: Double
    package var rouge_l: Double
    package var qa_accuracy: Double?
    package var errors: Int

    package init(_ runs: [CollabRunRecord], mode: String, link: String?, threshold: BenchThreshold?, errors: Int) {
        func mean(_ f: (CollabRunRecord) -> Double) -> Double { runs.isEmpty ? 0 : runs.map(f).reduce(0, +) / Double(runs.count) }
        self.mode = mode
        self.link = link
        self.threshold = threshold
        prompts = runs.count
        tokens_per_response = mean { Double($0.output.tokens.count) }
        total_s = mean { $0.output.timings.total }
        edge_s = mean { $0.output.timings.edge }
        cloud_s = mean { $0.output.timings.cloud }
        network_s = mean { $0.output.timings.network }
        bytes_per_response = mean { Double($0.output.bytes_up + $0.output.bytes_down) }
        link_bytes_per_response = mean { Double($0.link_bytes_up + $0.link_bytes_down) }
        round_trips = mean { Double($0.output.round_trips) }
        let tokens = runs.map(\.output.tokens.count).reduce(0, +)
        round_trips_per_token = tokens == 0 ? 0 : Double(runs.map(\.output.round_trips).reduce(0, +)) / Double(tokens)
        let rounds = runs.compactMap(\.output.speculation)
        let verifies = rounds.map(\.rounds).reduce(0, +)
        accepted_per_verify = verifies == 0 ? nil : Double(rounds.map(\.accepted).reduce(0, +)) / Double(verifies)
        cloud_token_share = tokens == 0 ? 0 : Double(runs.map(\.cloudTokens).reduce(0, +)) / Double(tokens)
        let cloudWork = runs.map(\.cloud_layer_work).reduce(0, +)
        let work = cloudWork + runs.map(\.edge_layer_work).reduce(0, +)
        cloud_work_share = work == 0 ? 0 : Double(cloudWork) / Double(work)
        token_agreement = mean(\.token_agreement)
        exact_match = mean { $0.exact_match ? 1 : 0 }
        rouge_l = mean(\.rouge_l)
        let qa = runs.compactMap(\.qa_correct)
        qa_accuracy = qa.isEmpty ? nil : Double(qa.filter { $0 }.count) / Double(qa.count)
        self.errors = errors
    }
}

/// Everything `bench collab` writes to collab.json.
package struct CollabBenchReport: Codable {
    package struct Setup: Codable {
        package var model_path: String
        package var layers: Int
        package var split: Int
        package var exits: String
        package var wire: String
        package var max_tokens: Int
        package var qa_max_tokens: Int
        package var generate_args: [String]
        package var modes: [String]
        package var links: [LinkSetting]
        package var thresholds: [BenchThreshold]
        package var prompts: Int
        package var qa_prompts: Int
        package var pinned: Bool
        package var edge_cpu: Int?
        package var cloud_cpu: Int?
        package var quick: Bool
        package var wall_seconds: Double
    }

    package var setup: Setup
    package var summaries: [CollabSummary]
    package var runs: [CollabRunRecord]
    package var errors: [String]

    package init(setup: Setup, summaries: [CollabSummary], runs: [CollabRunRecord], errors: [String]) {
        self.setup = setup
        self.summaries = summaries
        self.runs = runs
        self.errors = errors
    }
}
