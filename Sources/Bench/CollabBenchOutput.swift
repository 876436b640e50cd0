import Foundation

/// Writes a `bench collab` report: collab.json (everything), collab.md (the comparison table) and
/// SVG plots (time breakdown, bytes per response, accuracy vs time).
package enum CollabBenchOutput {
    package static func write(_ report: CollabBenchReport, to folder: URL, elapsed: Double) throws {
        var report = report
        report.setup.wall_seconds = elapsed
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(report).write(to: folder.appendingPathComponent("collab.json"))
        try markdown(report).write(to: folder.appendingPathComponent("collab.md"), atomically: true, encoding: .utf8)
        let labels = report.summaries.map(label)
        try SVGChart.bars(
            title: "Time per response (mean): edge, cloud, network, other", unit: "seconds", labels: labels,
            segments: [.init(name: "edge", color: "#4e79a7"), .init(name: "cloud", color: "#f28e2b"),
                       .init(name: "network", color: "#e15759"), .init(name: "other", color: "#bab0ac")],
            values: report.summaries.map { s in
                let other = s.mode == "local" ? s.total_s : max(0, s.total_s - s.edge_s - s.cloud_s - s.network_s)
                return s.mode == "local" ? [0, 0, 0, other] : [s.edge_s, s.cloud_s, s.network_s, other]
            }
        ).write(to: folder.appendingPathComponent("collab-time.svg"), atomically: true, encoding: .utf8)
        try SVGChart.bars(
            title: "Bytes per response (edge <-> cloud, protocol count)", unit: "bytes", labels: labels,
            segments: [.init(name: "bytes", color: "#59a14f")],
            values: report.summaries.map { [max($0.bytes_per_response, 0)] }, log: true
        ).write(to: folder.appendingPathComponent("collab-bytes.svg"), atomically: true, encoding: .utf8)
        let groups = Dictionary(grouping: report.summaries) { "\($0.mode)\($0.link.map { " " + $0 } ?? "")" }
        try SVGChart.lines(
            title: "Accuracy vs time: ROUGE-L against the full model (labels: threshold)",
            xLabel: "seconds per response", yLabel: "ROUGE-L vs full model",
            series: groups.keys.sorted().map { key in
                (key, groups[key]!.map { (x: $0.total_s, y: $0.rouge_l, label: $0.threshold.map { "\($0)" } ?? "") })
            }
        ).write(to: folder.appendingPathComponent("collab-accuracy.svg"), atomically: true, encoding: .utf8)
    }

    package static func label(_ s: CollabSummary) -> String {
        [s.mode, s.link, s.threshold.map { "t=\($0)" }].compactMap { $0 }.joined(separator: " ")
    }

    package static func markdown(_ report: CollabBenchReport) -> String {
        let s = report.setup
        var md = """
            # bench collab

            Model `\((s.model_path as NSString).lastPathComponent)` (\(s.layers) layers), split \(s.split), exits \
            \(s.exits.isEmpty ? "none" : s.exits) (logit lens unless calibrated), wire \(s.wire); \(s.prompts) prompts \
            (\(s.qa_prompts) QA), up to \(s.max_tokens) tokens (QA \(s.qa_max_tokens)); edge and cloud \
            \(s.pinned ? "pinned to CPUs \(s.edge_cpu.map(String.init) ?? "-") and \(s.cloud_cpu.map(String.init) ?? "-")" : "not pinned"); \
            \(s.quick ? "quick smoke run; " : "")\(String(format: "%.0f", s.wall_seconds)) s wall.

            | mode | link | threshold | total s | edge s | cloud s | network s | bytes/resp | link bytes/resp | round trips | RT/token | accepted/VERIFY | cloud tokens | cloud work | token agr. | exact | ROUGE-L | QA acc. |
            |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|

            """
        for r in report.summaries {
            let cells: [String] = [
                r.mode, r.link ?? "-", r.threshold.map { "\($0)" } ?? "-",
                String(format: "%.3f", r.total_s), String(format: "%.3f", r.edge_s), String(format: "%.3f", r.cloud_s),
                String(format: "%.3f", r.network_s), String(format: "%.0f", r.bytes_per_response),
                String(format: "%.0f", r.link_bytes_per_response), String(format: "%.1f", r.round_trips),
                String(format: "%.2f", r.round_trips_per_token), r.accepted_per_verify.map { String(format: "%.2f", $0) } ?? "-",
                String(format: "%.0f%%", r.cloud_token_share * 100), String(format: "%.0f%%", r.cloud_work_share * 100),
                String(format: "%.2f", r.token_agreement), String(format: "%.2f", r.exact_match),
                String(format: "%.2f", r.rouge_l), r.qa_accuracy.map { String(format: "%.2f", $0) } ?? "-",
            ]
            md += "| " + cells.joined(separator: " | ") + " |\n"
        }
        md += """

            Means per response. Times are measured by the edge process (`collm generate --json`): edge = its layers \
            and exit heads, cloud = compute time the cloud reported, network = the rest of the waiting. bytes/resp is \
            the protocol's count (messages plus gRPC framing); RT/token = round trips per generated token; accepted/VERIFY = \
            spec's draft tokens the cloud kept per VERIFY; link bytes/resp is what the emulated link carried (TCP \
            payload, including HTTP/2). cloud tokens = share of tokens decided by the cloud; cloud work = share of \
            layer-token work (positions x transformer layers, from the cloud's Health counters) done in the cloud. \
            Accuracy is against the full model (mode local): token agreement = matching positions / longer length, \
            exact = identical token sequences, ROUGE-L F1 over words; QA acc. = share of QA answers containing an \
            accepted answer.

            """
        if !report.errors.isEmpty {
            md += "\nErrors (\(report.errors.count)):\n\n" + report.errors.prefix(20).map { "- \($0)" }.joined(separator: "\n") + "\n"
        }
        return md
    }
}
