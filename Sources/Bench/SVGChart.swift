import Foundation

/// Minimal SVG charts for the benchmark reports (no plotting dependency): horizontal stacked
/// bars, and labelled scatter/line plots.
package enum SVGChart {
    package struct Segment {
        package var name: String
        package var color: String

        package init(name: String, color: String) {
            self.name = name
            self.color = color
        }
    }

    package static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]

    /// One bar per label, each split into segments (values per segment); `log` uses a log10 axis (single segment).
    package static func bars(title: String, unit: String, labels: [String], segments: [Segment], values: [[Double]],
                     log: Bool = false) -> String {
        let rowHeight = 22.0, left = 300.0, width = 900.0, top = 50.0
        let plotWidth = width - left - 40
        let height = top + Double(labels.count) * rowHeight + 60
        let totals = values.map { $0.reduce(0, +) }
        let maxTotal = max(totals.max() ?? 1, 1e-12)
        let minPositive = totals.filter { $0 > 0 }.min() ?? 1
        let lo = log ? pow(10, floor(log10(minPositive))) : 0
        let hi = log ? pow(10, ceil(log10(maxTotal))) : maxTotal * 1.05
        func x(_ v: Double) -> Double {
            if log { return v <= lo ? 0 : plotWidth * (log10(v) - log10(lo)) / max(log10(hi) - log10(lo), 1e-9) }
            return plotWidth * v / hi
        }
        var svg = header(width: width, height: height, title: title)
        for (i, label) in labels.enumerated() {
            let y = top + Double(i) * rowHeight
            svg += text(left - 8, y + 15, label, anchor: "end")
            var offset = 0.0
            for (k, value) in values[i].enumerated() where value > 0 {
                let start = x(offset), end = x(offset + value)
                svg += "<rect x=\"\(f(left + start))\" y=\"\(f(y + 3))\" width=\"\(f(max(end - start, 0.5)))\" height=\"\(f(rowHeight - 6))\" fill=\"\(segments[k].color)\"/>\n"
                offset += value
            }
            svg += text(left + x(totals[i]) + 4, y + 15, short(totals[i]), size: 11)
        }
        // Axis ticks.
        let ticks: [Double] = log
            ? stride(from: log10(lo), through: log10(hi), by: 1).map { pow(10, $0) }
            : (0...4).map { hi * Double($0) / 4 }
        let axisY = top + Double(labels.count) * rowHeight + 8
        for t in ticks {
            svg += "<line x1=\"\(f(left + x(t)))\" y1=\"\(f(top))\" x2=\"\(f(left + x(t)))\" y2=\"\(f(axisY))\" stroke=\"#ddd\"/>\n"
            svg += text(left + x(t), axisY + 14, short(t), anchor: "middle", size: 11)
        }
        svg += text(left + plotWidth / 2, axisY + 32, unit + (log ? " (log scale)" : ""), anchor: "middle")
        svg += legend(segments, x: left, y: 36)
        return svg + "</svg>\n"
    }

    /// Points (x, y) per series joined by lines, each point labelled.
    package static func lines(title: String, xLabel: String, yLabel: String,
                      series: [(name: String, points: [(x: Double, y: Double, label: String)])]) -> String {
        let width = 900.0, height = 520.0, left = 80.0, right = 40.0, top = 60.0, bottom = 60.0
        let all = series.flatMap(\.points)
        let xs = all.map(\.x), ys = all.map(\.y)
        let (x0, x1) = padded(xs.min() ?? 0, xs.max() ?? 1)
        let (y0, y1) = padded(ys.min() ?? 0, ys.max() ?? 1)
        func px(_ v: Double) -> Double { left + (width - left - right) * (v - x0) / (x1 - x0) }
        func py(_ v: Double) -> Double { height - bottom - (height - top - bottom) * (v - y0) / (y1 - y0) }
        var svg = header(width: width, height: height, title: title)
        for k in 0...4 {
            let xv = x0 + (x1 - x0) * Double(k) / 4, yv = y0 + (y1 - y0) * Double(k) / 4
            svg += "<line x1=\"\(f(px(xv)))\" y1=\"\(f(top))\" x2=\"\(f(px(xv)))\" y2=\"\(f(height - bottom))\" stroke=\"#eee\"/>\n"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(yv)))\" x2=\"\(f(width - right))\" y2=\"\(f(py(yv)))\" stroke=\"#eee\"/>\n"
            svg += text(px(xv), height - bottom + 16, short(xv), anchor: "middle", size: 11)
            svg += text(left - 6, py(yv) + 4, short(yv), anchor: "end", size: 11)
        }
        svg += text((left + width - right) / 2, height - 16, xLabel, anchor: "middle")
        svg += "<text x=\"18\" y=\"\(f((top + height - bottom) / 2))\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f((top + height - bottom) / 2)))\">\(escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            if s.points.count > 1 { svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n" }
            for p in s.points {
                svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"4\" fill=\"\(color)\"/>\n"
                if !p.label.isEmpty { svg += text(px(p.x) + 6, py(p.y) - 6, p.label, size: 10) }
            }
        }
        svg += legend(series.enumerated().map { Segment(name: $1.name, color: palette[$0 % palette.count]) }, x: left, y: 40)
        return svg + "</svg>\n"
    }

    private static func padded(_ lo: Double, _ hi: Double) -> (Double, Double) {
        if hi - lo < 1e-12 { return (lo - 1, hi + 1) }
        let pad = (hi - lo) * 0.08
        return (lo - pad, hi + pad)
    }

    private static func header(width: Double, height: Double, title: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" font-family="sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(text(width / 2, 22, title, anchor: "middle", size: 15))
        """
    }

    private static func legend(_ items: [Segment], x: Double, y: Double) -> String {
        var out = "", offset = x
        for item in items {
            out += "<rect x=\"\(f(offset))\" y=\"\(f(y - 10))\" width=\"12\" height=\"12\" fill=\"\(item.color)\"/>\n"
            out += text(offset + 16, y, item.name, size: 12)
            offset += 30 + Double(item.name.count) * 7
        }
        return out
    }

    package static func text(_ x: Double, _ y: Double, _ s: String, anchor: String = "start", size: Int = 12) -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\">\(escape(s))</text>\n"
    }

    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    package static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Compact number: 0.012, 3.4, 1.2k, 5.6M.
    package static func short(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1e6 { return String(format: "%.1fM", v / 1e6) }
        if a >= 1e3 { return String(format: "%.1fk", v / 1e3) }
        if a >= 10 || a == 0 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3f", v)
    }
}
