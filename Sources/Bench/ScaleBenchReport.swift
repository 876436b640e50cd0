import CollabTransport
import Foundation

/// One client count in `bench scale`.
package struct ScaleRound: Codable {
    package var clients: Int
    package var tokens: Int
    package var wall_seconds: Double
    /// All clients' tokens over the round's wall time (process start to last exit, model loading included).
    package var aggregate_tok_s: Double
    /// Sum of each client's own tokens/s over its generation time (excludes process start-up).
    package var sum_client_tok_s: Double
    /// Gaps between consecutive tokens of a client, over all clients (the first token's prefill excluded).
    package var p50_token_ms: Double
    package var p99_token_ms: Double
    package var mean_first_token_s: Double
    /// Cloud batching over the round (Health counters): passes, sessions and rows per pass, largest pass so far.
    package var cloud_batches: Int
    package var mean_batch_sessions: Double
    package var mean_batch_rows: Double
    package var largest_batch_sessions: Int
    package var cloud_rss_mib: Double
    package var edge_peak_rss_mib: Double
    package var cloud_token_share: Double

    package init(clients: Int, outputs: [GenerateOutput], wall: Double, health: CloudHealth, cloudRSS: Double, edgePeakRSS: Double) {
        self.clients = clients
        tokens = outputs.map(\.tokens.count).reduce(0, +)
        wall_seconds = wall
        aggregate_tok_s = Double(tokens) / max(wall, 1e-9)
        sum_client_tok_s = outputs.map { Double($0.tokens.count) / max($0.timings.total, 1e-9) }.reduce(0, +)
        let gaps = outputs.flatMap { o -> [Double] in
            let t = o.token_seconds ?? []
            return t.count < 2 ? [] : (1..<t.count).map { (t[$0] - t[$0 - 1]) * 1000 }
        }.sorted()
        p50_token_ms = Percentile.of(gaps, 0.50)
        p99_token_ms = Percentile.of(gaps, 0.99)
        mean_first_token_s = outputs.map(\.timings.prefill).reduce(0, +) / Double(max(outputs.count, 1))
        cloud_batches = health.batches
        mean_batch_sessions = health.batches == 0 ? 0 : Double(health.batchedSessions) / Double(health.batches)
        mean_batch_rows = health.batches == 0 ? 0 : Double(health.batchedRows) / Double(health.batches)
        largest_batch_sessions = health.largestBatchSessions
        cloud_rss_mib = cloudRSS
        edge_peak_rss_mib = edgePeakRSS
        let cloudTokens = outputs.flatMap(\.sources).filter { $0 == .cloud }.count
        cloud_token_share = tokens == 0 ? 0 : Double(cloudTokens) / Double(tokens)
    }
}

package struct ScaleReport: Codable {
    package var model_path: String
    package var mode: String
    package var max_tokens: Int
    package var split: Int
    package var link: LinkSetting?
    package var generate_args: [String]
    package var pinned: Bool
    package var edge_cpu: Int?
    package var cloud_cpu: Int?
    package var rounds: [ScaleRound]

    package init(model_path: String, mode: String, max_tokens: Int, split: Int, link: LinkSetting? = nil, generate_args: [String], pinned: Bool, edge_cpu: Int? = nil, cloud_cpu: Int? = nil, rounds: [ScaleRound]) {
        self.model_path = model_path
        self.mode = mode
        self.max_tokens = max_tokens
        self.split = split
        self.link = link
        self.generate_args = generate_args
        self.pinned = pinned
        self.edge_cpu = edge_cpu
        self.cloud_cpu = cloud_cpu
        self.rounds = rounds
    }
}

/// Writes scale.json, scale.md and the plots.
package enum ScaleBenchOutput {
    package static func write(_ report: ScaleReport, to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(report).write(to: folder.appendingPathComponent("scale.json"))
        var md = """
            # bench scale

            Mode \(report.mode), split \(report.split), \(report.max_tokens) tokens per client, \
            \(report.link.map { "link \($0.label)" } ?? "direct loopback"); \
            \(report.pinned ? "all edges on CPU \(report.edge_cpu ?? 0), cloud on CPU \(report.cloud_cpu.map(String.init) ?? "-")" : "not pinned").

            | clients | tokens | wall s | aggregate tok/s | sum of client tok/s | p50 ms/token | p99 ms/token | first token s | cloud batches | sessions/batch | rows/batch | largest batch | cloud RSS MiB | edge peak RSS MiB |
            |---|---|---|---|---|---|---|---|---|---|---|---|---|---|

            """
        for r in report.rounds {
            md += "| \(r.clients) | \(r.tokens) | " + [r.wall_seconds, r.aggregate_tok_s, r.sum_client_tok_s, r.p50_token_ms, r.p99_token_ms,
                                                      r.mean_first_token_s].map { String(format: "%.2f", $0) }.joined(separator: " | ")
            md += " | \(r.cloud_batches) | " + String(format: "%.2f | %.1f", r.mean_batch_sessions, r.mean_batch_rows)
            md += " | \(r.largest_batch_sessions) | " + String(format: "%.0f | %.0f", r.cloud_rss_mib, r.edge_peak_rss_mib) + " |\n"
        }
        md += """

            aggregate tok/s counts the round's wall time from starting the processes (model loading included); the sum \
            of client tok/s uses each client's own generation time. Per-token latency is the gap between consecutive \
            tokens of one client. Batch figures come from the cloud's Health counters over the round.

            """
        try md.write(to: folder.appendingPathComponent("scale.md"), atomically: true, encoding: .utf8)
        let n = report.rounds.map { Double($0.clients) }
        try SVGChart.lines(title: "Throughput vs clients (\(report.mode))", xLabel: "concurrent clients", yLabel: "tokens/s",
                           series: [("aggregate (wall)", zip(n, report.rounds).map { ($0, $1.aggregate_tok_s, "") }),
                                    ("sum of clients", zip(n, report.rounds).map { ($0, $1.sum_client_tok_s, "") })])
            .write(to: folder.appendingPathComponent("scale-throughput.svg"), atomically: true, encoding: .utf8)
        try SVGChart.lines(title: "Per-token latency vs clients (\(report.mode))", xLabel: "concurrent clients", yLabel: "ms per token",
                           series: [("p50", zip(n, report.rounds).map { ($0, $1.p50_token_ms, "") }),
                                    ("p99", zip(n, report.rounds).map { ($0, $1.p99_token_ms, "") })])
            .write(to: folder.appendingPathComponent("scale-latency.svg"), atomically: true, encoding: .utf8)
        try SVGChart.lines(title: "Cloud batch size vs clients", xLabel: "concurrent clients", yLabel: "sessions per batch (mean)",
                           series: [("sessions per batch", zip(n, report.rounds).map { ($0, $1.mean_batch_sessions, "") })])
            .write(to: folder.appendingPathComponent("scale-batch.svg"), atomically: true, encoding: .utf8)
    }
}
