import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import XCTest

/// A tiny stand-in for the cloud service: just enough behaviour to exercise the transport end to end.
/// Open -> Opened; Append -> Ack(positions_held = first_position + rows); Close -> ends the stream;
/// anything else -> ErrorReply(INVALID_ARGUMENT).
private struct LoopbackCollabService: Collm_V1_Collab.SimpleServiceProtocol {
    static let fingerprint = Data([0xC0, 0x11, 0xAB])

    func session(
        request: RPCAsyncSequence<Collm_V1_EdgeMessage, any Error>,
        response: RPCWriter<Collm_V1_CloudMessage>,
        context: ServerContext
    ) async throws {
        for try await message in request {
            var reply = Collm_V1_CloudMessage()
            reply.requestID = message.requestID
            switch message.body {
            case .open(let open):
                reply.opened = .with {
                    $0.sessionID = Data(repeating: 0x5A, count: 16)
                    $0.maxPositions = open.maxPositions
                    $0.maxRowsPerAppend = 64
                    $0.protocolVersion = UInt32(ProtocolVersion.current)
                }
            case .append(let append):
                reply.ack = .with { $0.positionsHeld = append.firstPosition + UInt64(append.rows) }
            case .close:
                return  // ends the response stream with status OK
            default:
                reply.error = .with {
                    $0.code = .invalidArgument
                    $0.message = "loopback service only handles open, append and close"
                }
            }
            try await response.write(reply)
        }
    }

    func cloudGenerate(
        request: Collm_V1_CloudGenerateRequest,
        response: RPCWriter<Collm_V1_CloudGenerateEvent>,
        context: ServerContext
    ) async throws {
        for (index, token) in request.promptTokens.prefix(Int(request.maxTokens)).enumerated() {
            try await response.write(.with {
                $0.token = .with {
                    $0.position = UInt64(index)
                    $0.tokenID = token
                }
            })
        }
        try await response.write(.with { $0.done = true })
    }

    func naiveStep(request: Collm_V1_NaiveStepRequest, context: ServerContext) async throws -> Collm_V1_TokenResult {
        throw RPCError(code: .unimplemented, message: "naive step not in the loopback service")
    }

    func health(request: Collm_V1_HealthRequest, context: ServerContext) async throws -> Collm_V1_HealthReply {
        .with {
            $0.status = "ok"
            $0.modelFingerprint = Self.fingerprint
            $0.splitLayer = 12
            $0.sessions = 0
        }
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "timed out after \(seconds) s" }
}

/// Runs `body`, cancelling it and throwing if it takes longer than `seconds` (a hung stream must fail, not hang CI).
func withTimeout<T: Sendable>(
    seconds: Double,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimeoutError(seconds: seconds)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Starts a real HTTP/2 server on 127.0.0.1 with an OS-chosen port, connects a real client to it, runs `body`,
/// then shuts both down gracefully.
func withLoopbackClient<T: Sendable>(
    _ body: @escaping @Sendable (Collm_V1_Collab.Client<HTTP2ClientTransport.Posix>) async throws -> T
) async throws -> T {
    try await withTimeout(seconds: 30) {
        let serverTransport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: 0),
            transportSecurity: .plaintext
        )
        let server = GRPCServer(transport: serverTransport, services: [LoopbackCollabService()])
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve() }
            // Suspends until the socket is bound; port 0 -> read the real port back.
            guard let bound = try await server.listeningAddress?.ipv4 else {
                throw RPCError(code: .internalError, message: "server has no IPv4 listening address")
            }
            XCTAssertGreaterThan(bound.port, 0)

            let clientTransport = try HTTP2ClientTransport.Posix(
                target: .ipv4(host: "127.0.0.1", port: bound.port),
                transportSecurity: .plaintext
            )
            let result: T
            do {
                result = try await withGRPCClient(transport: clientTransport) { client in
                    try await body(Collm_V1_Collab.Client(wrapping: client))
                }
            } catch {
                server.beginGracefulShutdown()
                throw error
            }
            server.beginGracefulShutdown()
            try await group.waitForAll()  // serve() returns once the server has stopped
            return result
        }
    }
}

final class LoopbackTests: XCTestCase {
    func testHealthUnary() async throws {
        let reply = try await withLoopbackClient { collab in
            try await collab.health(Collm_V1_HealthRequest())
        }
        XCTAssertEqual(reply.status, "ok")
        XCTAssertEqual(reply.modelFingerprint, LoopbackCollabService.fingerprint)
        XCTAssertEqual(reply.splitLayer, 12)
    }

    func testSessionBidiStreamRequestReply() async throws {
        // The edge's pattern: an outbox the request producer drains, replies read as they come.
        let received: [Collm_V1_CloudMessage] = try await withLoopbackClient { collab in
            let (outbox, sender) = AsyncStream.makeStream(of: Collm_V1_EdgeMessage.self)
            sender.yield(.with {
                $0.requestID = 1
                $0.open = .with {
                    $0.protocolVersion = UInt32(ProtocolVersion.current)
                    $0.modelFingerprint = LoopbackCollabService.fingerprint
                    $0.splitLayer = 12
                    $0.wire = .f16
                    $0.maxPositions = 2048
                }
            })
            return try await collab.session(
                requestProducer: { writer in
                    for await message in outbox { try await writer.write(message) }
                },
                onResponse: { response in
                    var replies: [Collm_V1_CloudMessage] = []
                    var iterator = response.messages.makeAsyncIterator()
                    // Opened for the Open queued above.
                    if let opened = try await iterator.next() { replies.append(opened) }
                    // Then one message at a time: send, wait for its reply.
                    let followUps: [Collm_V1_EdgeMessage] = [
                        appendMessage(requestID: 2, firstPosition: 0, rows: 5),
                        appendMessage(requestID: 3, firstPosition: 5, rows: 3),
                        .with {
                            $0.requestID = 4
                            $0.infer = .with {
                                $0.position = 7
                                $0.sampling = .with { $0.temperature = 0 }
                            }
                        },
                        .with {
                            $0.requestID = 5
                            $0.truncate = .with { $0.position = 6 }
                        },
                    ]
                    for message in followUps {
                        sender.yield(message)
                        guard let reply = try await iterator.next() else { break }
                        replies.append(reply)
                    }
                    // Close: the client half-closes; the service ends its stream, so the responses end too.
                    sender.yield(.with {
                        $0.requestID = 6
                        $0.close = Collm_V1_Close()
                    })
                    sender.finish()  // half-close: the edge has nothing more to send
                    while let extra = try await iterator.next() { replies.append(extra) }
                    return replies
                }
            )
        }

        XCTAssertEqual(received.map(\.requestID), [1, 2, 3, 4, 5])
        guard received.count == 5 else { return }

        guard case .opened(let opened)? = received[0].body else { return XCTFail("expected opened: \(received[0])") }
        XCTAssertEqual(opened.sessionID.count, 16)
        XCTAssertEqual(opened.maxPositions, 2048)
        XCTAssertEqual(opened.protocolVersion, UInt32(ProtocolVersion.current))

        guard case .ack(let ack1)? = received[1].body else { return XCTFail("expected ack: \(received[1])") }
        XCTAssertEqual(ack1.positionsHeld, 5)
        guard case .ack(let ack2)? = received[2].body else { return XCTFail("expected ack: \(received[2])") }
        XCTAssertEqual(ack2.positionsHeld, 8)

        for reply in received[3...] {
            guard case .error(let error)? = reply.body else { return XCTFail("expected error: \(reply)") }
            XCTAssertEqual(error.code, .invalidArgument)
        }
    }

    func testServerStreamingAndErrorStatus() async throws {
        let tokens: [UInt32] = try await withLoopbackClient { collab in
            try await collab.cloudGenerate(.with {
                $0.promptTokens = [10, 11, 12]
                $0.maxTokens = 2
            }) { response in
                var tokens: [UInt32] = []
                var sawDone = false
                for try await event in response.messages {
                    if event.done { sawDone = true } else { tokens.append(event.token.tokenID) }
                }
                XCTAssertTrue(sawDone)
                return tokens
            }
        }
        XCTAssertEqual(tokens, [10, 11])

        // A thrown RPCError on the server reaches the client as the same status code.
        do {
            _ = try await withLoopbackClient { collab in
                try await collab.naiveStep(Collm_V1_NaiveStepRequest())
            }
            XCTFail("naiveStep should fail")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unimplemented)
        }
    }
}

final class SerializationTests: XCTestCase {
    private func roundTrip(_ message: Collm_V1_EdgeMessage) throws -> Collm_V1_EdgeMessage {
        let bytes: [UInt8] = try message.serializedBytes()
        return try Collm_V1_EdgeMessage(serializedBytes: bytes)
    }

    func testEveryEdgeMessageCaseRoundTrips() throws {
        let sampling = Collm_V1_Sampling.with {
            $0.temperature = 0.7
            $0.topK = 40
            $0.topP = 0.95
            $0.minP = 0.05
            $0.repetitionPenalty = 1.1
            $0.seed = 42  // explicit presence: also sets hasSeed
        }
        let bodies: [Collm_V1_EdgeMessage.OneOf_Body] = [
            .open(.with {
                $0.protocolVersion = UInt32(ProtocolVersion.current)
                $0.modelFingerprint = Data([1, 2, 3, 4])
                $0.splitLayer = 15
                $0.wire = .q8
                $0.maxPositions = 4096
                $0.resumeSessionID = Data(repeating: 7, count: 16)
            }),
            .append(.with {
                $0.firstPosition = 1 << 40
                $0.rows = 3
                $0.states = Data((0..<255).map { UInt8($0) })
            }),
            .infer(.with {
                $0.position = 99
                $0.sampling = sampling
                $0.topLogprobs = 5
                $0.historyTail = [1, 2, 3, UInt32.max]
            }),
            .verify(.with {
                $0.firstPosition = 10
                $0.draftTokens = [5, 6, 7]
                $0.sampling = sampling
            }),
            .truncate(.with { $0.position = 12 }),
            .close(Collm_V1_Close()),
        ]
        XCTAssertTrue(sampling.hasSeed)
        XCTAssertFalse(Collm_V1_Sampling().hasSeed)
        for (index, body) in bodies.enumerated() {
            var message = Collm_V1_EdgeMessage()
            message.requestID = UInt64(index + 1)
            message.body = body
            let decoded = try roundTrip(message)
            XCTAssertEqual(decoded, message, "case \(index)")
            XCTAssertEqual(decoded.body, body, "case \(index)")
        }
        // The empty Close still selects its oneof case on the wire.
        XCTAssertEqual(try roundTrip(.with { $0.close = Collm_V1_Close() }).body, .close(Collm_V1_Close()))
    }

    func testCloudMessageRoundTripsAndUnknownEnumValuesSurvive() throws {
        let message = Collm_V1_CloudMessage.with {
            $0.requestID = 9
            $0.verified = .with {
                $0.accepted = 2
                $0.next = .with {
                    $0.position = 12
                    $0.tokenID = 1234
                    $0.logprob = -0.25
                    $0.top = [.with { $0.tokenID = 1234; $0.logprob = -0.25 }, .with { $0.tokenID = 9; $0.logprob = -2 }]
                    $0.stats = .with { $0.rowsComputed = 3; $0.batchRows = 8; $0.cloudSeconds = 0.012 }
                }
            }
        }
        let bytes: [UInt8] = try message.serializedBytes()
        XCTAssertEqual(try Collm_V1_CloudMessage(serializedBytes: bytes), message)

        // A newer peer's error code decodes as .UNRECOGNIZED instead of failing.
        let future = Collm_V1_ErrorReply.with { $0.code = .UNRECOGNIZED(42) }
        let decoded = try Collm_V1_ErrorReply(serializedBytes: try future.serializedBytes() as [UInt8])
        XCTAssertEqual(decoded.code, .UNRECOGNIZED(42))
    }
}

/// APPEND of `rows` f16 states of width 8 (zeros: the fake engine only counts them).
private func appendMessage(requestID: UInt64, firstPosition: UInt64, rows: UInt32) -> Collm_V1_EdgeMessage {
    .with {
        $0.requestID = requestID
        $0.append = .with {
            $0.firstPosition = firstPosition
            $0.rows = rows
            $0.states = Data(count: Int(rows) * 8 * 2)
        }
    }
}
