/// Who decided a generated token. The CLI's JSON, the OpenAI API's `collm.sources` and the metrics
/// all use `encoded` ("local", "edge:15", "cloud", "edge:15:degraded"); this is the one place it is
/// spelled.
public enum TokenSource: Sendable, Hashable {
    /// The whole model in this process.
    case local
    /// An exit at `layer` on the edge was confident (standalone edge, collab, or an accepted spec draft).
    case edge(layer: Int)
    /// The cloud's layers answered.
    case cloud
    /// The edge answered alone at `layer` because the cloud was unreachable.
    case degraded(layer: Int)

    public var encoded: String {
        switch self {
        case .local: "local"
        case .edge(let layer): "edge:\(layer)"
        case .cloud: "cloud"
        case .degraded(let layer): "edge:\(layer):degraded"
        }
    }

    public init?(encoded: String) {
        let parts = encoded.split(separator: ":", omittingEmptySubsequences: false)
        switch (parts.first, parts.count) {
        case ("local", 1): self = .local
        case ("cloud", 1): self = .cloud
        case ("edge", 2): guard let layer = Int(parts[1]) else { return nil }; self = .edge(layer: layer)
        case ("edge", 3) where parts[2] == "degraded":
            guard let layer = Int(parts[1]) else { return nil }
            self = .degraded(layer: layer)
        default: return nil
        }
    }

    /// Decided on the edge by a confident exit (not a degraded fallback).
    public var isEdgeDecision: Bool {
        if case .edge = self { return true }
        return false
    }

    public var isDegraded: Bool {
        if case .degraded = self { return true }
        return false
    }
}

extension TokenSource: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let source = TokenSource(encoded: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown token source '\(text)'"))
        }
        self = source
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(encoded)
    }
}

extension Sequence where Element == TokenSource {
    /// Share of tokens decided by a confident edge exit.
    public var edgeShare: Double {
        var (edge, all) = (0, 0)
        for source in self {
            all += 1
            if source.isEdgeDecision { edge += 1 }
        }
        return all == 0 ? 0 : Double(edge) / Double(all)
    }
}
