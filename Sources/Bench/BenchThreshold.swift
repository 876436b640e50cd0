/// An exit threshold setting of `bench collab`: a fixed value for every exit, or each exit's calibrated
/// threshold (what `generate` uses by default, so what a user gets).
package enum BenchThreshold: Hashable, Sendable, Codable, CustomStringConvertible {
    case calibrated
    case fixed(Double)

    /// Parses "calibrated,0.8,1.0", with a clear error naming the option.
    package static func parseList(_ text: String, option: String) throws -> [BenchThreshold] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = try items.map { item -> BenchThreshold in
            if item == "calibrated" { return .calibrated }
            guard let v = Double(item), v.isFinite, v >= 0 else {
                throw BenchError("\(option) takes 'calibrated' or numbers >= 0 separated by commas (got '\(item)')")
            }
            return .fixed(v)
        }
        guard !values.isEmpty else { throw BenchError("\(option) is empty") }
        return values
    }

    /// `generate`'s arguments for this setting: none for the calibrated thresholds.
    package var generateArguments: [String] {
        switch self {
        case .calibrated: return []
        case let .fixed(v): return ["--threshold", "\(v)"]
        }
    }

    package var description: String {
        switch self {
        case .calibrated: return "calibrated"
        case let .fixed(v): return "\(v)"
        }
    }

    /// JSON: the number, or the string "calibrated".
    package init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Double.self) {
            self = .fixed(v)
        } else if try container.decode(String.self) == "calibrated" {
            self = .calibrated
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "threshold: a number or \"calibrated\"")
        }
    }

    package func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .calibrated: try container.encode("calibrated")
        case let .fixed(v): try container.encode(v)
        }
    }
}
