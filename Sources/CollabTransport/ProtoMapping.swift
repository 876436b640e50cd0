import CollabCore
import Foundation
import CollabProtocol
import LLM

/// Conversions between the protobuf messages and the transport-independent CollabCore types.
extension WireFormat {
    init(_ proto: Collm_V1_WireFormat) throws {
        switch proto {
        case .f32: self = .f32
        case .f16: self = .f16
        case .q8: self = .q8
        default: throw CollabError(.invalidArgument, "unknown wire format")
        }
    }

    var proto: Collm_V1_WireFormat {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8: return .q8
        }
    }
}

extension SamplingParameters {
    init(_ p: Collm_V1_Sampling) {
        self.init()
        temperature = p.temperature
        topK = Int(p.topK)
        topP = p.topP == 0 ? 1 : p.topP
        minP = p.minP
        repetitionPenalty = p.repetitionPenalty == 0 ? 1 : p.repetitionPenalty
        seed = p.hasSeed ? p.seed : nil
    }

    var proto: Collm_V1_Sampling {
        .with {
            $0.temperature = temperature
            $0.topK = UInt32(clamping: topK)
            $0.topP = topP
            $0.minP = minP
            $0.repetitionPenalty = repetitionPenalty
            if let seed { $0.seed = seed }
        }
    }
}

extension CollabError {
    init(_ reply: Collm_V1_ErrorReply) {
        let code: Code
        switch reply.code {
        case .invalidArgument: code = .invalidArgument
        case .fingerprintMismatch: code = .fingerprintMismatch
        case .unknownSession: code = .unknownSession
        case .permissionDenied: code = .permissionDenied
        case .resourceExhausted: code = .resourceExhausted
        case .outOfOrder: code = .outOfOrder
        case .unauthenticated: code = .unauthenticated
        default: code = .internal
        }
        self.init(code, reply.message)
    }

    var proto: Collm_V1_ErrorReply {
        .with {
            $0.message = message
            switch code {
            case .invalidArgument: $0.code = .invalidArgument
            case .fingerprintMismatch: $0.code = .fingerprintMismatch
            // A RESYNC travels as its own message (CloudService); as an error it reads as unknown.
            case .unknownSession, .resync: $0.code = .unknownSession
            case .permissionDenied: $0.code = .permissionDenied
            case .resourceExhausted: $0.code = .resourceExhausted
            case .outOfOrder: $0.code = .outOfOrder
            case .unauthenticated: $0.code = .unauthenticated
            case .unavailable, .tls, .internal: $0.code = .internal
            }
        }
    }
}

extension TokenReply {
    init(_ p: Collm_V1_TokenResult) {
        self.init(position: Int(p.position), token: Int(p.tokenID), logprob: p.logprob,
                  top: p.top.map { TokenCandidate(token: Int($0.tokenID), logprob: $0.logprob) },
                  rowsComputed: Int(p.stats.rowsComputed), batchRows: Int(p.stats.batchRows),
                  cloudSeconds: p.stats.cloudSeconds)
    }

    var proto: Collm_V1_TokenResult {
        .with {
            $0.position = UInt64(position)
            $0.tokenID = UInt32(token)
            $0.logprob = logprob
            $0.top = top.map { c in .with { $0.tokenID = UInt32(c.token); $0.logprob = c.logprob } }
            $0.stats = .with {
                $0.rowsComputed = UInt32(rowsComputed)
                $0.batchRows = UInt32(batchRows)
                $0.cloudSeconds = cloudSeconds
            }
        }
    }
}

extension OpenRequest {
    init(_ p: Collm_V1_Open) throws {
        let resume = p.resumeSessionID.isEmpty ? nil : SessionID(bytes: Array(p.resumeSessionID))
        if !p.resumeSessionID.isEmpty && resume == nil { throw CollabError(.invalidArgument, "session ids have 16 bytes") }
        self.init(fingerprint: Array(p.modelFingerprint), splitLayer: Int(p.splitLayer), wire: try WireFormat(p.wire),
                  maxPositions: Int(p.maxPositions), resume: resume)
        protocolVersion = Int(p.protocolVersion)
    }

    var proto: Collm_V1_Open {
        .with {
            $0.protocolVersion = UInt32(protocolVersion)
            $0.modelFingerprint = Data(fingerprint)
            $0.splitLayer = UInt32(splitLayer)
            $0.wire = wire.proto
            $0.maxPositions = UInt32(maxPositions)
            if let resume { $0.resumeSessionID = Data(resume.bytes) }
        }
    }
}

extension OpenReply {
    init(_ p: Collm_V1_Opened) throws {
        guard let id = SessionID(bytes: Array(p.sessionID)) else { throw CollabError(.internal, "OPENED without a valid session id") }
        self.init(session: id, maxPositions: Int(p.maxPositions), maxRowsPerAppend: Int(p.maxRowsPerAppend),
                  positionsHeld: Int(p.positionsHeld))
    }

    var proto: Collm_V1_Opened {
        .with {
            $0.sessionID = Data(session.bytes)
            $0.maxPositions = UInt32(maxPositions)
            $0.maxRowsPerAppend = UInt32(maxRowsPerAppend)
            $0.protocolVersion = UInt32(ProtocolVersion.current)
            $0.positionsHeld = UInt64(positionsHeld)
        }
    }
}
