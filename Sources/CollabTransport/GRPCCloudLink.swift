import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LLM
import SwiftProtobuf

/// A cloud session over one gRPC bidirectional stream. APPENDs are queued on the stream without
/// waiting (the cloud answers them only on error); OPEN, INFER and TRUNCATE wait for their reply,
/// matched by request id. Any stream failure fails every waiter, so the edge can fall back.
public final class GRPCCloudLink: CloudLink, @unchecked Sendable {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let outbox: AsyncStream<Collm_V1_EdgeMessage>.Continuation
    private let lock = NSLock()
    private var waiters: [UInt64: CheckedContinuation<Collm_V1_CloudMessage, Error>] = [:]
    private var nextID: UInt64 = 1
    private var failure: Error?
    private var counters = LinkTraffic()
    private var tasks: [Task<Void, Never>] = []
    /// Per-message framing on the wire: gRPC's 5-byte prefix plus an HTTP/2 DATA frame header.
    static let framing = 5 + 9

    init(connector: GRPCConnector, routingKey: String?) throws {
        self.connector = connector
        client = GRPCClient(transport: try connector.makeTransport())
        let (stream, continuation) = AsyncStream.makeStream(of: Collm_V1_EdgeMessage.self)
        outbox = continuation
        self.stream = stream
        metadata = connector.metadata(routingKey: routingKey)
    }

    private let stream: AsyncStream<Collm_V1_EdgeMessage>
    private let metadata: Metadata
    private let connector: GRPCConnector

    /// Starts the connection and the session stream.
    func start() {
        let client = self.client
        let stream = self.stream
        let request = StreamingClientRequest<Collm_V1_EdgeMessage>(metadata: self.metadata) { writer in
            for await message in stream { try await writer.write(message) }
        }
        let connections = Task<Void, Never> { _ = try? await client.runConnections() }
        let link = self  // the link lives as long as its stream task
        let connector = self.connector
        let session = Task<Void, Never> {
            do {
                try await Collm_V1_Collab.Client(wrapping: client).session(request: request) { response in
                    for try await message in response.messages { link.deliver(message) }
                }
                link.failAll(CollabError(.unavailable, "the cloud closed the session stream"))
            } catch {
                // Refusals (token, TLS) are told apart from outages: the edge stops on them.
                link.failAll(await connector.classify(error))
            }
        }
        lock.withLock { tasks = [connections, session] }
    }

    deinit {
        outbox.finish()
        client.beginGracefulShutdown()
    }

    public var traffic: LinkTraffic { lock.withLock { counters } }

    private func deliver(_ message: Collm_V1_CloudMessage) {
        let size = ((try? message.serializedBytes() as [UInt8])?.count ?? 0) + Self.framing
        let waiter: CheckedContinuation<Collm_V1_CloudMessage, Error>? = lock.withLock {
            counters.bytesDown += size
            if let w = waiters.removeValue(forKey: message.requestID) { return w }
            if case .error(let e)? = message.body, failure == nil { failure = CollabError(e) }  // a failed APPEND
            return nil
        }
        waiter?.resume(returning: message)
    }

    private func failAll(_ error: Error) {
        let pending: [CheckedContinuation<Collm_V1_CloudMessage, Error>] = lock.withLock {
            if failure == nil { failure = error }
            defer { waiters = [:] }
            return Array(waiters.values)
        }
        pending.forEach { $0.resume(throwing: error) }
    }

    /// Sends a message; with `wait`, returns its reply (throwing the cloud's error reply).
    private func send(_ build: (inout Collm_V1_EdgeMessage) -> Void, wait: Bool) async throws -> Collm_V1_CloudMessage? {
        var message = Collm_V1_EdgeMessage()
        build(&message)
        let size = (try message.serializedBytes() as [UInt8]).count + Self.framing
        let id: UInt64 = try lock.withLock {
            if let failure { throw failure }
            defer { nextID += 1 }
            counters.bytesUp += size
            if wait { counters.roundTrips += 1 }
            return nextID
        }
        message.requestID = id
        guard wait else {
            outbox.yield(message)
            return nil
        }
        let start = Date()
        let reply: Collm_V1_CloudMessage = try await withCheckedThrowingContinuation { continuation in
            let failed: Error? = lock.withLock {
                if let failure { return failure }
                waiters[id] = continuation
                return nil
            }
            if let failed { continuation.resume(throwing: failed) } else { outbox.yield(message) }
        }
        lock.withLock { counters.networkSeconds += Date().timeIntervalSince(start) }
        if case .error(let e)? = reply.body { throw CollabError(e) }
        return reply
    }

    public func open(_ request: OpenRequest) async throws -> OpenReply {
        let reply = try await send({ $0.open = request.proto }, wait: true)
        if case .resync(let r)? = reply?.body { throw CollabError(.resync, r.reason) }
        guard case .opened(let opened)? = reply?.body else { throw CollabError(.internal, "unexpected reply to OPEN") }
        return try OpenReply(opened)
    }

    public func append(firstPosition: Int, rows: Int, payload: [UInt8]) async throws {
        _ = try await send({
            $0.append = .with {
                $0.firstPosition = UInt64(firstPosition)
                $0.rows = UInt32(rows)
                $0.states = Data(payload)
            }
        }, wait: false)
    }

    public func infer(position: Int, sampling: SamplingParameters, topLogprobs: Int, history: [Int]) async throws -> TokenReply {
        let reply = try await send({
            $0.infer = .with {
                $0.position = UInt64(position)
                $0.sampling = sampling.proto
                $0.topLogprobs = UInt32(topLogprobs)
                $0.historyTail = history.map { UInt32($0) }
            }
        }, wait: true)
        guard case .token(let t)? = reply?.body else { throw CollabError(.internal, "unexpected reply to INFER") }
        return TokenReply(t)
    }

    public func verify(firstPosition: Int, draft: [Int], sampling: SamplingParameters) async throws -> TokenReply {
        let reply = try await send({
            $0.verify = .with {
                $0.firstPosition = UInt64(firstPosition)
                $0.draftTokens = draft.map { UInt32($0) }
                $0.sampling = sampling.proto
            }
        }, wait: true)
        guard case .verified(let v)? = reply?.body else { throw CollabError(.internal, "unexpected reply to VERIFY") }
        var result = TokenReply(v.next)
        result.accepted = Int(v.accepted)
        return result
    }

    public func truncate(to position: Int) async throws {
        _ = try await send({ $0.truncate = .with { $0.position = UInt64(position) } }, wait: true)
    }

    /// Drops the connection without CLOSE, as a crashed or vanished edge would: the session stays on
    /// the cloud, for a resume or until it expires.
    public func disconnect() {
        outbox.finish()
        lock.withLock { tasks }.forEach { $0.cancel() }
        client.beginGracefulShutdown()
    }

    public func close() async {
        _ = try? await send({ $0.close = Collm_V1_Close() }, wait: false)
        outbox.finish()
        // Wait (at most 2 s) for the cloud to end the stream, i.e. to have processed CLOSE: a proxy in
        // between (nginx) may drop frames still in flight when the edge disconnects right away, and
        // the session would then stay open on its replica until the idle timeout.
        if let session = lock.withLock({ tasks.count > 1 ? tasks[1] : nil }) {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await session.value }
                group.addTask { try? await Task.sleep(nanoseconds: 2_000_000_000) }
                await group.next()
                session.cancel()  // no-op when the stream ended; else stop waiting for the cloud
                group.cancelAll()
            }
        }
        client.beginGracefulShutdown()
    }
}

/// Connects GRPCCloudLinks to HOST:PORT.
public struct GRPCConnector: CloudConnector {
    public let host: String
    public let port: Int
    public let token: String?
    /// PEM file of the certificate(s) to trust for TLS; nil: plaintext.
    public let trustRoots: String?

    public init(address: String, token: String?, trustRoots: String? = nil) throws {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (1...65535).contains(port) else {
            throw CollabError(.invalidArgument, "cloud address must be HOST:PORT (got \(address))")
        }
        host = String(address[..<colon])
        self.port = port
        self.token = token
        self.trustRoots = trustRoots
    }

    /// A client transport to the cloud: TLS verifying the server against `trustRoots`, else plaintext.
    func makeTransport() throws -> HTTP2ClientTransport.Posix {
        let security: HTTP2ClientTransport.Posix.TransportSecurity = trustRoots.map { roots in
            .tls { $0.trustRoots = .certificates([.file(path: roots, format: .pem)]) }
        } ?? .plaintext
        return try HTTP2ClientTransport.Posix(target: target, transportSecurity: security)
    }

    /// The cloud's address; a literal IP must not become the TLS server name (SNI), so it is
    /// connected to as an address.
    var target: any ResolvableTarget {
        host.split(separator: ".").count == 4 && host.allSatisfy({ $0.isNumber || $0 == "." })
            ? .ipv4(host: host, port: port) : .dns(host: host, port: port)
    }

    /// Call metadata carrying the bearer token, if any.
    var metadata: Metadata { metadata(routingKey: nil) }

    /// Call metadata with the bearer token (if any) and the session's routing key (if any), which a
    /// balancer in front of several replicas hashes to pick the replica (deploy/haproxy.cfg).
    func metadata(routingKey: String?) -> Metadata {
        var metadata = Metadata()
        if let token { metadata.addString("Bearer \(token)", forKey: "authorization") }
        if let routingKey { metadata.addString(routingKey, forKey: RoutingKey.header) }
        return metadata
    }

    public func connect() async throws -> CloudLink {
        try await connect(routingKey: RoutingKey.random())
    }

    public func connect(routingKey: String) async throws -> CloudLink {
        let link = try GRPCCloudLink(connector: self, routingKey: routingKey)
        link.start()
        return link
    }
}
