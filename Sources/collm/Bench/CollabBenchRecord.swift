/// One generation in `bench collab`: what `collm generate --json` reported, what the link and the
/// cloud counted around it, and its accuracy against the full model.
struct CollabRunRecord: Codable {
    var prompt_id: String
    var kind: String
    var mode: String
    var link: String?
    var threshold: Double?
    var output: GenerateOutput
    /// Bytes the emulated link carried for this run, each way (TCP payload: gRPC + HTTP/2 framing included).
    var link_bytes_up = 0
    var link_bytes_down = 0
    /// Positions the cloud computed through its layers [s, L) and through the whole model (Health counters).
    var cloud_split_rows = 0
    var cloud_full_rows = 0
    /// Layer-token work: positions x transformer layers, on each side (exit heads excluded).
    var edge_layer_work = 0
    var cloud_layer_work = 0
    var token_agreement = 0.0
    var exact_match = false
    var rouge_l = 0.0
    var qa_correct: Bool?

    /// Decoding steps: generated tokens plus the end-of-sequence token when one was produced.
    var steps: Int { output.tokens.count + (output.stop_reason == "eos" ? 1 : 0) }
    /// Positions the model ran over: the prompt and every generated token but the last.
    var positions: Int { output.prompt_tokens + steps - 1 }
    var cloudTokens: Int { output.sources.filter { $0 == "cloud" }.count }
}

/// Means over the prompts of one configuration (mode x link x threshold): the comparison table's row.
struct CollabSummary: Codable {
    var mode: String
    var link: String?
    var threshold: Double?
    var prompts: Int
    var tokens_per_response: Double
    var total_s: Double
    var edge_s: Double
    var cloud_s: Double
    var network_s: Double
    var bytes_per_response: Double
    var link_bytes_per_response: Double
    var round_trips: Double
    var cloud_token_share: Double
    var cloud_work_share: Double
    var token_agreement: Double
    var exact_match: Double
    var rouge_l: Double
    var qa_accuracy: Double?
    var errors: Int

    init(_ runs: [CollabRunRecord], mode: String, link: String?, threshold: Double?, errors: Int) {
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
struct CollabBenchReport: Codable {
    struct Setup: Codable {
        var model_path: String
        var layers: Int
        var split: Int
        var exits: String
        var wire: String
        var max_tokens: Int
        var qa_max_tokens: Int
        var generate_args: [String]
        var modes: [String]
        var links: [LinkSetting]
        var thresholds: [Double]
        var prompts: Int
        var qa_prompts: Int
        var pinned: Bool
        var edge_cpu: Int?
        var cloud_cpu: Int?
        var quick: Bool
        var wall_seconds: Double
    }

    var setup: Setup
    var summaries: [CollabSummary]
    var runs: [CollabRunRecord]
    var errors: [String]
}
