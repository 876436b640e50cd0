import LLM

extension GenerationMode {
    /// Parses a comma-separated mode list for `bench collab`; `local` is always run first as the accuracy reference.
    /// A mode uses exit thresholds (`usesExits`: run once per threshold) and may need the cloud (`needsCloud`: run
    /// over the emulated link, once per link setting).
    package static func parseList(_ text: String) throws -> [GenerationMode] {
        var modes: [GenerationMode] = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let mode = GenerationMode(rawValue: name) else {
                throw BenchError("unknown mode '\(name)' in --modes (known: \(allCases.map(\.rawValue).joined(separator: ",")))")
            }
            if !modes.contains(mode) { modes.append(mode) }
        }
        guard !modes.isEmpty else { throw BenchError("--modes is empty") }
        return [.local] + modes.filter { $0 != .local }
    }
}

/// An emulated link setting, written RTT_MS:MBIT on the command line.
package struct LinkSetting: Codable, Sendable, Equatable {
    package var rtt_ms: Double
    package var rate_mbit: Double

    package var name: String { "rtt\(rtt_ms.compact)ms-\(rate_mbit.compact)mbit" }
    package var label: String { "RTT \(rtt_ms.compact) ms / \(rate_mbit.compact) Mbit/s" }

    package static func parseList(_ text: String) throws -> [LinkSetting] {
        let settings = try text.split(separator: ",").map { item -> LinkSetting in
            let parts = item.split(separator: ":")
            guard parts.count == 2, let rtt = Double(parts[0]), let rate = Double(parts[1]), rtt >= 0, rate > 0,
                  rtt.isFinite, rate.isFinite else {
                throw BenchError("--links takes RTT_MS:MBIT pairs separated by commas, e.g. 20:100,100:10 (got '\(item)')")
            }
            return LinkSetting(rtt_ms: rtt, rate_mbit: rate)
        }
        guard !settings.isEmpty else { throw BenchError("--links is empty") }
        return settings
    }

    package init(rtt_ms: Double, rate_mbit: Double) {
        self.rtt_ms = rtt_ms
        self.rate_mbit = rate_mbit
    }
}

extension Double {
    /// "20" for 20.0, "0.5" for 0.5: for labels and file names.
    package var compact: String {
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
    }
}
