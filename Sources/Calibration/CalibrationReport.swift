import Exits
import Foundation

/// Human views of a calibration: a Markdown table and an SVG plot of exit rate against agreement
/// (fitted adapter solid, logit lens dashed), both from the held-out test part.
public enum CalibrationReport {
    public static func table(_ c: ExitCalibration) -> String {
        let compared = c.exits.contains { $0.ridge != nil }
        var lines = [
            "split \(c.split), target precision \(c.targetPrecision), test tokens \(c.notes["tokens.test"] ?? "?"), "
                + (c.rule == .full ? "confidence over the whole vocabulary" : "confidence over the \(c.shortlist.count)-token shortlist" + (c.shortlistRows.map { " (\($0) rows)" } ?? "")),
            "",
            compared
                ? "| exit | block | top-1 agreement (lens → ridge → block) | exit@80% (lens → ridge → block) | exit@90% (lens → ridge → block) | threshold | test exit rate | test precision |"
                : "| exit | block | top-1 agreement (lens → fitted) | exit@80% (lens → fitted) | exit@90% (lens → fitted) | threshold | test exit rate | test precision |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for e in c.exits {
            func chain(_ pick: (ExitCalibration.Evaluation) -> Double?) -> String {
                ([e.logitLens] + (e.ridge.map { [$0] } ?? []) + [e.adapter])
                    .map { String(format: "%.3f", pick($0) ?? 0) }.joined(separator: " → ")
            }
            lines.append("| \(e.layer) | \(e.block.label) | \(chain { $0.agreement }) | \(chain { $0.exitRateAtPrecision["0.8"] }) | "
                + "\(chain { $0.exitRateAtPrecision["0.9"] }) | "
                + (e.threshold > 1 ? "never" : String(format: "%.3f", e.threshold))
                + String(format: " | %.3f | %.3f |", e.testExitRate, e.testPrecision))
        }
        for e in c.exits where !e.training.isEmpty {
            lines.append(String(format: "- exit %d training: %.1f s, %.0f epochs (best %.0f), %.1f ms/step, %.0f multiply-adds per token",
                                e.layer, e.training["seconds"] ?? 0, e.training["epochs"] ?? 0, e.training["best_epoch"] ?? 0,
                                e.training["ms_per_step"] ?? 0, e.training["macs_per_token"] ?? 0))
        }
        let greedy = c.exits.compactMap { e in
            c.notes["exit.\(e.layer).greedy.exit_rate.0.9"].map { "exit \(e.layer) \($0) at 90% (\(c.notes["exit.\(e.layer).greedy.exit_rate.0.8"] ?? "?") at 80%)" }
        }
        if !greedy.isEmpty, let count = c.notes["tokens.test.greedy"] {
            lines += ["", "On the \(count) test tokens of greedy answers (as collab decodes): " + greedy.joined(separator: ", ")]
        }
        if let rate = c.notes["collab.edge_rate"], let precision = c.notes["collab.edge_precision"], let all = c.notes["collab.agreement"] {
            lines += ["", "collab with these thresholds (test tokens, teacher-forced): edge decides \(rate) of tokens "
                + "at agreement \(precision); agreement with the full model over all tokens \(all)"]
        }
        lines += ["", "Curves (fitted adapter; threshold: exit rate / agreement):"]
        for e in c.exits {
            let points = e.adapter.curve.map { String(format: "%.2f: %.3f/%.3f", $0.threshold, $0.exitRate, $0.agreement) }
            lines.append("- exit \(e.layer): " + points.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// Agreement (y) against exit rate (x), one colour per exit.
    public static func svg(_ c: ExitCalibration) -> String {
        let (w, h, m) = (640.0, 420.0, 50.0)
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        func x(_ v: Double) -> Double { m + v * (w - 2 * m) }
        func y(_ v: Double) -> Double { h - m - v * (h - 2 * m) }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(w / 2)" y="20" text-anchor="middle" font-size="14">Exit rate vs agreement with the full model (split \(c.split), held-out)</text>
            <line x1="\(m)" y1="\(h - m)" x2="\(w - m)" y2="\(h - m)" stroke="black"/>
            <line x1="\(m)" y1="\(m)" x2="\(m)" y2="\(h - m)" stroke="black"/>
            <text x="\(w / 2)" y="\(h - 12)" text-anchor="middle">share of tokens exiting</text>
            <text x="14" y="\(h / 2)" text-anchor="middle" transform="rotate(-90 14 \(h / 2))">agreement of exited tokens</text>

            """
        for t in stride(from: 0.0, through: 1.0, by: 0.25) {
            s += "<text x=\"\(x(t))\" y=\"\(h - m + 16)\" text-anchor=\"middle\">\(t)</text>"
            s += "<text x=\"\(m - 6)\" y=\"\(y(t) + 4)\" text-anchor=\"end\">\(t)</text>\n"
        }
        s += "<line x1=\"\(x(0))\" y1=\"\(y(c.targetPrecision))\" x2=\"\(x(1))\" y2=\"\(y(c.targetPrecision))\" stroke=\"#999\" stroke-dasharray=\"2,3\"/>\n"
        for (i, e) in c.exits.enumerated() {
            let color = colors[i % colors.count]
            for (curve, dash) in [(e.adapter.curve, ""), (e.logitLens.curve, " stroke-dasharray=\"6,4\"")] {
                let points = curve.map { String(format: "%.1f,%.1f", x($0.exitRate), y($0.agreement)) }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(points)\"/>\n"
            }
            s += "<text x=\"\(w - m - 150)\" y=\"\(m + 16 * Double(i) + 10)\" fill=\"\(color)\">exit \(e.layer): \(e.block.label) (solid), lens (dashed)</text>\n"
        }
        return s + "</svg>\n"
    }
}
