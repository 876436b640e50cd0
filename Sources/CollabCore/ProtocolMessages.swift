import LLM

/// Transport-independent forms of the session messages (docs/ARCHITECTURE.md section 3). The gRPC layer maps
/// its protobuf messages to these, and in-process links use them directly.
public enum ProtocolVersion {
    /// Sent by the edge in OPEN and echoed by the cloud in OPENED. Bump when a change is not
    /// backward compatible (field meaning changes, not additions).
    public static let current = 1
}

public struct OpenRequest: Sendable, Equatable {
    public var protocolVersion = ProtocolVersion.current
    public var fingerprint: [UInt8]
    public var splitLayer: Int
    public var wire: WireFormat
    /// Positions the session may hold; admission reserves memory for them.
    public var maxPositions: Int
    /// Re-attach to this session (after a reconnect) instead of creating one.
    public var resume: SessionID?

    public init(fingerprint: [UInt8], splitLayer: Int, wire: WireFormat, maxPositions: Int, resume: SessionID? = nil) {
        self.fingerprint = fingerprint
        self.splitLayer = splitLayer
        self.wire = wire
        self.maxPositions = maxPositions
        self.resume = resume
    }
}

public struct OpenReply: Sendable, Equatable {
    public var session: SessionID
    public var maxPositions: Int
    public var maxRowsPerAppend: Int
    /// Positions the cloud already holds for a resumed session (0 for a new one).
    public var positionsHeld: Int

    public init(session: SessionID, maxPositions: Int, maxRowsPerAppend: Int, positionsHeld: Int) {
        self.session = session
        self.maxPositions = maxPositions
        self.maxRowsPerAppend = maxRowsPerAppend
        self.positionsHeld = positionsHeld
    }
}

public struct TokenCandidate: Sendable, Equatable {
    public var token: Int
    public var logprob: Float

    public init(token: Int, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }
}

/// The cloud's answer to INFER(position): the token that follows `position`.
public struct TokenReply: Sendable, Equatable {
    public var position: Int
    public var token: Int
    public var logprob: Float
    public var top: [TokenCandidate]
    /// Rows this request caught up (pending uploads computed now).
    public var rowsComputed: Int
    /// Rows in the batched forward pass that served it (several sessions may share one).
    public var batchRows: Int
    public var cloudSeconds: Double
    /// VERIFY only: how many draft tokens agreed (`token` follows them: `position` = first position + accepted).
    public var accepted = 0

    public init(position: Int, token: Int, logprob: Float, top: [TokenCandidate] = [], rowsComputed: Int,
                batchRows: Int, cloudSeconds: Double) {
        self.position = position
        self.token = token
        self.logprob = logprob
        self.top = top
        self.rowsComputed = rowsComputed
        self.batchRows = batchRows
        self.cloudSeconds = cloudSeconds
    }
}
