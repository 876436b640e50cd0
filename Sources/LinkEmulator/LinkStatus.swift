/// A snapshot of the emulator, as the control endpoint reports it (JSON keys are snake_case).
public struct LinkStatus: Sendable, Codable, Equatable {
    public var listen: String
    public var target: String
    public var cut: Bool
    public var delay_ms: Double
    public var rate_mbit: Double
    public var jitter_ms: Double
    public var active_connections: Int
    public var accepted_connections: Int
    public var failed_to_target: Int
    /// Edge -> cloud bytes delivered.
    public var bytes_up: Int
    /// Cloud -> edge bytes delivered.
    public var bytes_down: Int
}
