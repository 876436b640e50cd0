/// How a generation runs (docs/ARCHITECTURE.md section 2). The one list of modes: `generate`,
/// `serve` and the benchmarks all take it.
public enum GenerationMode: String, Sendable, CaseIterable, Codable {
    /// The full model in this process: the reference every other mode is compared with.
    case local
    /// Layers [0, s) with early exits, no network.
    case edge
    /// CE-CoLLM: confident exits answer on the edge, the cloud the rest, from states uploaded once.
    case collab
    /// The whole model in the cloud (baseline).
    case cloud
    /// Split without a context manager: every step re-sends all boundary states (baseline).
    case naive
    /// Lossless speculation: the edge drafts with its split exit, the cloud verifies.
    case spec

    /// Talks to a cloud.
    public var needsCloud: Bool { self == .collab || self == .cloud || self == .naive || self == .spec }

    /// Decides tokens with exit heads (so exit thresholds apply).
    public var usesExits: Bool { self == .edge || self == .collab || self == .spec }
}
