import Foundation

/// One measured load level of one mode.
package struct LoadPoint: Codable {
    package var users: Int
    /// Arrival rate (requests/s) for open-loop points; nil for closed-loop ones.
    package var rate: Double?
    package var requests: Int
    package var tokens: Int
    package var wall_s: Double
    package var tokens_per_s: Double
    package var tpot_p50_ms: Double
    package var tpot_p95_ms: Double
    package var tpot_p99_ms: Double
    package var ttft_p50_ms: Double
    package var ttft_p95_ms: Double
    package var ttft_p99_ms: Double
    package var errors: Int
    package var cloud_cpu_s: Double
    package var cloud_cpu_s_per_1k_tokens: Double
    package var cloud_rss_mib: Double
    /// Mean works per forward pass in the cloud (our cloud only).
    package var sessions_per_pass: Double?
    /// Cloud round trips (INFER + VERIFY) per generated token, from the recordings (collab, spec).
    package var round_trips_per_token: Double?
    package var first_error: String?

    package init(users: Int, rate: Double?, samples: [RequestSample], wall: Double, cpuSeconds: Double, rssMiB: Double,
         sessionsPerPass: Double?) {
        self.users = users
        self.rate = rate
        let good = samples.filter { $0.error == nil }
        requests = samples.count
        tokens = good.reduce(0) { $0 + $1.tokens }
        wall_s = wall
        tokens_per_s = wall > 0 ? Double(tokens) / wall : 0
        let tpots = good.compactMap(\.tpot).map { $0 * 1000 }.sorted()
        let ttfts = good.map { $0.ttft * 1000 }.sorted()
        tpot_p50_ms = Percentile.of(tpots, 0.50)
        tpot_p95_ms = Percentile.of(tpots, 0.95)
        tpot_p99_ms = Percentile.of(tpots, 0.99)
        ttft_p50_ms = Percentile.of(ttfts, 0.50)
        ttft_p95_ms = Percentile.of(ttfts, 0.95)
        ttft_p99_ms = Percentile.of(ttfts, 0.99)
        errors = samples.count - good.count
        cloud_cpu_s = cpuSeconds
        cloud_cpu_s_per_1k_tokens = tokens > 0 ? cpuSeconds / Double(tokens) * 1000 : 0
        cloud_rss_mib = rssMiB
        sessions_per_pass = sessionsPerPass
        first_error = samples.first { $0.error != nil }?.error
    }

    /// Meets the service level: p99 TPOT and TTFT within bounds and no errors.
    package func meets(sloMs: Double, ttftSloMs: Double) -> Bool {
        errors == 0 && tpot_p99_ms <= sloMs && ttft_p99_ms <= ttftSloMs && tokens > 0
    }
}

package enum Percentile {
    /// Nearest-rank percentile of sorted values (0 when empty).
    package static func of(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}

package struct LoadModeResult: Codable {
    package var mode: String
    /// The split for collab and spec; nil for the cloud-only peers.
    package var split: Int?
    /// The most users (closed loop) meeting the SLO; 0 when none did.
    package var capacity_users: Int
    /// The highest arrival rate meeting the SLO (open loop), if measured.
    package var capacity_rate: Double?
    package var points: [LoadPoint]
    /// Recording facts (collab, spec): edge-decided share and tokens per cloud round trip.
    package var edge_token_share: Double?
    package var note: String?

    package var label: String { split.map { "\(mode) s\($0)" } ?? mode }

    package init(mode: String, split: Int? = nil, capacity_users: Int, capacity_rate: Double? = nil, points: [LoadPoint], edge_token_share: Double? = nil, note: String? = nil) {
        self.mode = mode
        self.split = split
        self.capacity_users = capacity_users
        self.capacity_rate = capacity_rate
        self.points = points
        self.edge_token_share = edge_token_share
        self.note = note
    }
}

package struct LoadReport: Codable {
    package var slo_ms: Double
    package var ttft_slo_ms: Double
    package var link: String
    package var cloud_cpu: Int?
    package var model_path: String
    package var sessions: Int
    package var duration_s: Double
    package var modes: [LoadModeResult]

    package static func capacity(_ points: [LoadPoint], sloMs: Double, ttftSloMs: Double) -> Int {
        points.filter { $0.rate == nil && $0.meets(sloMs: sloMs, ttftSloMs: ttftSloMs) }.map(\.users).max() ?? 0
    }

    package var markdown: String {
        var lines = ["# bench load", "",
                     "Link \(link); cloud pinned to CPU \(cloud_cpu.map(String.init) ?? "none"); SLO: p99 TPOT <= \(Int(slo_ms)) ms, p99 TTFT <= \(Int(ttft_slo_ms)) ms, no errors; \(sessions) recorded sessions; \(Int(duration_s)) s per point.", "",
                     "| mode | capacity (users) | best tok/s | CPU-s per 1k tokens (at capacity) | edge share |",
                     "|---|---|---|---|---|"]
        for mode in modes {
            let at = mode.points.first { $0.users == mode.capacity_users && $0.rate == nil }
            lines.append("| \(mode.label) | \(mode.capacity_users) | \(String(format: "%.1f", mode.points.map(\.tokens_per_s).max() ?? 0)) | \(at.map { String(format: "%.2f", $0.cloud_cpu_s_per_1k_tokens) } ?? "-") | \(mode.edge_token_share.map { String(format: "%.2f", $0) } ?? "-") |")
        }
        lines += ["", "| mode | users | rate | tok/s | TPOT p50 / p95 / p99 ms | TTFT p50 / p99 ms | errors | CPU-s/1k tok | RSS MiB | sessions/pass |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for mode in modes {
            for p in mode.points {
                lines.append(String(format: "| %@ | %d | %@ | %.1f | %.1f / %.1f / %.1f | %.0f / %.0f | %d | %.2f | %.0f | %@ |",
                                    mode.label, p.users, p.rate.map { String(format: "%.1f/s", $0) } ?? "-", p.tokens_per_s,
                                    p.tpot_p50_ms, p.tpot_p95_ms, p.tpot_p99_ms, p.ttft_p50_ms, p.ttft_p99_ms, p.errors,
                                    p.cloud_cpu_s_per_1k_tokens, p.cloud_rss_mib,
                                    p.sessions_per_pass.map { String(format: "%.1f", $0) } ?? "-"))
            }
        }
        for mode in modes where mode.note != nil { lines.append("\n- \(mode.label): \(mode.note!)") }
        return lines.joined(separator: "\n") + "\n"
    }

    package func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: folder.appendingPathComponent("load.json"))
        try markdown.write(to: folder.appendingPathComponent("load.md"), atomically: true, encoding: .utf8)
        let closed = modes.map { mode in (name: mode.label, points: mode.points.filter { $0.rate == nil }) }
        let tpot = SVGChart.lines(title: "p99 time per output token (SLO \(Int(slo_ms)) ms)", xLabel: "concurrent users",
                                  yLabel: "TPOT p99 (ms)",
                                  series: closed.map { ($0.name, $0.points.map { (Double($0.users), $0.tpot_p99_ms, "") }) })
        try tpot.write(to: folder.appendingPathComponent("load-tpot.svg"), atomically: true, encoding: .utf8)
        let cpu = SVGChart.lines(title: "cloud CPU-seconds per 1,000 generated tokens", xLabel: "concurrent users",
                                 yLabel: "CPU-s / 1k tokens",
                                 series: closed.map { ($0.name, $0.points.map { (Double($0.users), $0.cloud_cpu_s_per_1k_tokens, "") }) })
        try cpu.write(to: folder.appendingPathComponent("load-cpu.svg"), atomically: true, encoding: .utf8)
    }

    package init(slo_ms: Double, ttft_slo_ms: Double, link: String, cloud_cpu: Int? = nil, model_path: String, sessions: Int, duration_s: Double, modes: [LoadModeResult]) {
        self.slo_ms = slo_ms
        self.ttft_slo_ms = ttft_slo_ms
        self.link = link
        self.cloud_cpu = cloud_cpu
        self.model_path = model_path
        self.sessions = sessions
        self.duration_s = duration_s
        self.modes = modes
    }
}
