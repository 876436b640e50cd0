import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LLM
import SwiftProtobuf

/// The naive baseline's steps as unary NaiveStep calls on one connection. Every step of one
/// generation carries the same routing key (the steps are stateless, but stay together).
public final class GRPCNaiveLink: NaiveCloudLink, @unchecked Sendable {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, Never>
    private let metadata: Metadata
    private let fingerprint: [UInt8]
    private let splitLayer: Int
    private let lock = NSLock()
    private var counters = LinkTraffic()

    public init(connector: GRPCConnector, fingerprint: [UInt8], splitLayer: Int) throws {
        let client = GRPCClient(transport: try connector.makeTransport())
        self.client = client
        connections = Task { _ = try? await client.runConnections() }
        metadata = connector.metadata(routingKey: RoutingKey.random())
        self.fingerprint = fingerprint
        self.splitLayer = splitLayer
    }

    deinit { client.beginGracefulShutdown() }

    public var traffic: LinkTraffic { lock.withLock { counters } }

    public func step(rows: Int, states: [UInt8], wire: WireFormat, sampling: SamplingParameters) async throws -> TokenReply {
        let request = Collm_V1_NaiveStepRequest.with {
            $0.positionCount = UInt64(rows)
            $0.rows = UInt32(rows)
            $0.wire = wire.proto
            $0.states = Data(states)
            $0.sampling = sampling.proto
            $0.modelFingerprint = Data(fingerprint)
            $0.splitLayer = UInt32(splitLayer)
        }
        let up = (try request.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
        let start = Date()
        let reply = try await Collm_V1_Collab.Client(wrapping: client).naiveStep(
            request: ClientRequest(message: request, metadata: metadata))
        let down = (try reply.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
        lock.withLock {
            counters.bytesUp += up
            counters.bytesDown += down
            counters.roundTrips += 1
            counters.networkSeconds += Date().timeIntervalSince(start)
        }
        return TokenReply(position: rows - 1, token: Int(reply.tokenID), logprob: reply.logprob, rowsComputed: rows,
                          batchRows: rows, cloudSeconds: reply.stats.cloudSeconds)
    }

    public func close() async {
        client.beginGracefulShutdown()
        await connections.value
    }
}

/// The cloud-only baseline as one server-streaming CloudGenerate call. One request is one stream: a
/// fresh routing key lets a balancer spread requests over replicas.
public struct GRPCCloudGeneration: CloudGenerationLink {
    let connector: GRPCConnector

    public init(connector: GRPCConnector) {
        self.connector = connector
    }

    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stopTokens: Set<Int>,
                         onToken: (TokenReply) -> Void) async throws -> LinkTraffic {
        let request = Collm_V1_CloudGenerateRequest.with {
            $0.promptTokens = prompt.map { UInt32($0) }
            $0.maxTokens = UInt32(maxTokens)
            $0.sampling = sampling.proto
            $0.stopTokens = stopTokens.sorted().map { UInt32($0) }
        }
        let metadata = connector.metadata(routingKey: RoutingKey.random())
        let start = Date()
        let connector = self.connector
        // The call streams into `tokens` (its handler must be Sendable); this task hands each token on.
        let (tokens, continuation) = AsyncThrowingStream<TokenReply, Error>.makeStream()
        async let call: LinkTraffic = {
            var traffic = LinkTraffic()
            traffic.bytesUp = (try request.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
            traffic.roundTrips = 1
            do {
                traffic.bytesDown = try await withGRPCClient(transport: try connector.makeTransport()) { client in
                    try await Collm_V1_Collab.Client(wrapping: client).cloudGenerate(
                        request: ClientRequest(message: request, metadata: metadata)
                    ) { response in
                        var bytesDown = 0
                        for try await event in response.messages {
                            bytesDown += (try event.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
                            continuation.yield(TokenReply(event.token))
                        }
                        return bytesDown
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
                throw error
            }
            return traffic
        }()
        for try await reply in tokens { onToken(reply) }
        var traffic = try await call
        traffic.networkSeconds = Date().timeIntervalSince(start)
        return traffic
    }
}
