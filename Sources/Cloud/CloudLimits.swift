/// Resource limits of a cloud server. Admission reserves each session's declared maximum up front,
/// so an admitted session can never run the server out of memory later.
public struct CloudLimits: Sendable {
    /// Bytes for all sessions' KV caches and pending uploaded states.
    public var memoryBudgetBytes: Int = 2 << 30
    /// Longest session a client may declare (positions).
    public var maxPositionsPerSession: Int = 8192
    /// Rows one APPEND may carry.
    public var maxRowsPerAppend: Int = 2048
    /// Sessions untouched this long are closed.
    public var idleTimeoutSeconds: Double = 600
    /// Rows in one batched forward pass (across sessions): the budget long catch-ups and prompts
    /// are chunked under, so that one of them never holds up the others' next tokens for long.
    public var maxBatchRows: Int = 128
    /// Draft tokens one VERIFY may carry (speculative mode).
    public var maxDraftTokens: Int = 64

    public init() {}
}
