import Cloud
import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import LLM

/// The cloud's gRPC face: one bidirectional stream per edge session, mapped onto the CloudEngine.
/// Errors are answered in-band (ErrorReply with the request id) and the stream stays usable, so one
/// bad message never ends a session, let alone another one.
public struct CloudService: Collm_V1_Collab.SimpleServiceProtocol {
    let engine: CloudEngine
    /// Who owns the sessions a stream opens: the principal of its bearer token ("default" without auth).
    let principals: Principals

    public init(engine: CloudEngine, principals: Principals = Principals(tokens: [:])) {
        self.engine = engine
        self.principals = principals
    }

    /// The stream's owner comes from its metadata, which the simple form of the handler does not see.
    public func session(request: StreamingServerRequest<Collm_V1_EdgeMessage>,
                        context: ServerContext) async throws -> StreamingServerResponse<Collm_V1_CloudMessage> {
        let owner = principals.principal(authorization: request.metadata.authorization) ?? "default"
        return StreamingServerResponse(metadata: [:]) { writer in
            try await self.session(request: request.messages, response: writer, context: context, owner: owner)
            return [:]
        }
    }

    public func session(request: RPCAsyncSequence<Collm_V1_EdgeMessage, any Error>,
                        response: RPCWriter<Collm_V1_CloudMessage>, context: ServerContext) async throws {
        try await session(request: request, response: response, context: context, owner: "default")
    }

    private func session(request: RPCAsyncSequence<Collm_V1_EdgeMessage, any Error>,
                         response: RPCWriter<Collm_V1_CloudMessage>, context: ServerContext, owner: String) async throws {
        // A stream that ends without CLOSE keeps its session: the edge may resume it.
        var session: SessionID?
        for try await message in request {
            let id = message.requestID
            do {
                switch message.body {
                case .open(let open)?:
                    let req = try OpenRequest(open)
                    let reply: OpenReply
                    do {
                        reply = try await engine.open(req, owner: owner)
                    } catch let error as CollabError where error.code == .resync {
                        try await response.write(.with {
                            $0.requestID = id
                            $0.resync = .with { $0.positionsHeld = 0; $0.reason = error.message }
                        })
                        continue
                    }
                    session = reply.session
                    try await response.write(.with {
                        $0.requestID = id
                        $0.opened = reply.proto
                    })
                case .append(let append)?:
                    guard let session else { throw CollabError(.invalidArgument, "APPEND before OPEN") }
                    guard append.firstPosition < UInt64(Int32.max) else { throw CollabError(.invalidArgument, "position out of range") }
                    // No reply on success: uploads are fire-and-forget, errors come back in-band.
                    _ = try await engine.append(session, owner: owner, firstPosition: Int(append.firstPosition),
                                                rows: Int(append.rows), payload: Array(append.states))
                case .infer(let infer)?:
                    guard let session else { throw CollabError(.invalidArgument, "INFER before OPEN") }
                    guard infer.position < UInt64(Int32.max) else { throw CollabError(.invalidArgument, "position out of range") }
                    let reply = try await engine.infer(InferJob(
                        session: session, owner: owner, position: Int(infer.position),
                        sampling: SamplingParameters(infer.sampling), topLogprobs: Int(infer.topLogprobs),
                        history: infer.historyTail.suffix(256).map(Int.init)))
                    try await response.write(.with { $0.requestID = id; $0.token = reply.proto })
                case .truncate(let truncate)?:
                    guard let session else { throw CollabError(.invalidArgument, "TRUNCATE before OPEN") }
                    let held = try await engine.truncate(session, owner: owner, to: Int(min(truncate.position, UInt64(Int32.max))))
                    try await response.write(.with { $0.requestID = id; $0.ack = .with { $0.positionsHeld = UInt64(held) } })
                case .close?:
                    if let s = session { try? await engine.close(s, owner: owner) }
                    session = nil
                    return
                case .verify(let verify)?:
                    guard let session else { throw CollabError(.invalidArgument, "VERIFY before OPEN") }
                    guard verify.firstPosition < UInt64(Int32.max) else { throw CollabError(.invalidArgument, "position out of range") }
                    let reply = try await engine.infer(InferJob(
                        session: session, owner: owner, position: Int(verify.firstPosition),
                        sampling: SamplingParameters(verify.sampling), draft: verify.draftTokens.prefix(4096).map(Int.init)))
                    try await response.write(.with {
                        $0.requestID = id
                        $0.verified = .with { $0.accepted = UInt32(reply.accepted); $0.next = reply.proto }
                    })
                case nil:
                    throw CollabError(.invalidArgument, "empty message")
                }
            } catch let error as CollabError {
                // unknown_session tells the edge to reopen and replay its log (RESYNC).
                try await response.write(.with { $0.requestID = id; $0.error = error.proto })
            }
        }
    }

    /// The `cloud` baseline: the engine's scheduler runs the whole model for this request in the same
    /// passes as every other session's work, and tokens are written as they are made.
    public func cloudGenerate(request: Collm_V1_CloudGenerateRequest, response: RPCWriter<Collm_V1_CloudGenerateEvent>,
                              context: ServerContext) async throws {
        let generation = GenerationRequest(prompt: request.promptTokens.map(Int.init), maxTokens: Int(request.maxTokens),
                                           sampling: SamplingParameters(request.sampling),
                                           stopTokens: Set(request.stopTokens.map(Int.init)))
        do {
            for try await token in engine.generate(generation) {
                try await response.write(.with {
                    $0.token.position = UInt64(token.position)
                    $0.token.tokenID = UInt32(token.token)
                    $0.token.logprob = token.logprob
                    $0.token.stats.cloudSeconds = token.cloudSeconds
                    $0.done = token.done
                })
            }
        } catch let error as CollabError {
            throw RPCError(code: error.code == .invalidArgument ? .invalidArgument : .unavailable, message: error.description)
        }
    }

    public func naiveStep(request: Collm_V1_NaiveStepRequest, context: ServerContext) async throws -> Collm_V1_TokenResult {
        let wire: WireFormat
        do { wire = try WireFormat(request.wire) } catch { throw RPCError(code: .invalidArgument, message: "\(error)") }
        let step = NaiveStepRequest(fingerprint: Array(request.modelFingerprint), splitLayer: Int(request.splitLayer),
                                    wire: wire, rows: Int(min(request.rows, UInt32(Int32.max))),
                                    payload: Array(request.states), sampling: SamplingParameters(request.sampling))
        do {
            return try await engine.naiveStep(step).proto
        } catch let error as CollabError {
            throw RPCError(code: error.code == .fingerprintMismatch ? .failedPrecondition : .invalidArgument, message: error.description)
        }
    }

    public func health(request: Collm_V1_HealthRequest, context: ServerContext) async throws -> Collm_V1_HealthReply {
        guard let reply = await engine.inspect({ manager in
            Collm_V1_HealthReply.with {
                $0.status = "ok"
                $0.sessions = UInt32(manager.sessionCount)
                $0.splitLayer = UInt32(manager.splitLayer)
                $0.modelFingerprint = Data(manager.fingerprint)
                $0.batches = UInt64(manager.batches)
                $0.batchedRows = UInt64(manager.batchedRows)
                $0.batchedSessions = UInt64(manager.batchedSessions)
                $0.largestBatchSessions = UInt32(manager.largestBatchSessions)
                $0.fullModelRows = UInt64(manager.fullModelRows)
                $0.rssBytes = UInt64(ProcessMemory.residentBytes())  // memory per replica (scale-out)
            }
        }) else {
            throw RPCError(code: .unavailable, message: "the cloud is shutting down")
        }
        return reply
    }
}
