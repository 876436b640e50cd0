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
    /// Chunks of long works are sized so that a pass takes about this long (adapted to measured pass
    /// times): the latency a long catch-up, prompt or naive step adds to other sessions' next tokens.
    public var passTargetSeconds: Double = 0.1
    /// Draft tokens one VERIFY may carry (speculative mode).
    public var maxDraftTokens: Int = 64
    /// Largest magnitude an uploaded state may have: NaN, infinite or absurd states (an f32 APPEND
    /// of 3e38s) are refused instead of silently yielding garbage tokens. Not f16's 65504: Gemma 3's
    /// residual stream exceeds it at split 9, which is also why it needs the f32 wire.
    public var maxStateMagnitude: Float = 1e6
    /// What one principal (a bearer token's owner) may hold at once. A principal's own least recently
    /// used sessions make room for its new ones; another principal's live sessions never do.
    public var principalQuota = PrincipalQuota()
    /// Quotas of named principals that differ from `principalQuota`.
    public var principalQuotas: [String: PrincipalQuota] = [:]

    public func quota(of principal: String) -> PrincipalQuota { principalQuotas[principal] ?? principalQuota }

    public init() {}
}

/// Per-principal limits (`collm cloud --tokens-file` can set them per principal).
public struct PrincipalQuota: Sendable, Equatable {
    public var maxSessions: Int = 256
    /// Bytes of session memory; nil = the whole budget.
    public var maxBytes: Int?

    public init(maxSessions: Int = 256, maxBytes: Int? = nil) {
        self.maxSessions = maxSessions
        self.maxBytes = maxBytes
    }
}
