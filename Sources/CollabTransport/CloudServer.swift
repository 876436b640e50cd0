import Cloud
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// Runs the gRPC server for a CloudService until `shutdown()`.
public final class CloudServer: Sendable {
    let server: GRPCServer<HTTP2ServerTransport.Posix>

    /// TLS material for the server: PEM files of the certificate chain and its private key.
    public struct TLSFiles: Sendable {
        public var certificateChain: String
        public var privateKey: String

        public init(certificateChain: String, privateKey: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    /// Connection hygiene: what a silent, slow or greedy client may hold.
    public struct ConnectionLimits: Sendable {
        /// A connection with no open stream for this long is closed (silent sockets included).
        public var idleSeconds: Double = 60
        /// Streams one connection may have open at once.
        public var maxStreamsPerConnection: Int = 128
        /// A connection whose peer does not answer a ping sent after this much silence is closed.
        public var keepaliveSeconds: Double = 60
        /// A new connection must send the HTTP/2 preface (or its TLS handshake) within this time.
        public var handshakeSeconds: Double = 10
        /// Connections open at once; more are closed on accept.
        public var maxConnections: Int = 1024

        public init() {}
    }

    public init(host: String, port: Int, service: CloudService, principals: Principals, tls: TLSFiles? = nil,
                connections: ConnectionLimits = ConnectionLimits()) throws {
        if principals.isEmpty, !Self.isLoopback(host) {
            throw CloudServerError("listening on \(host) (beyond loopback) requires --token or $COLLM_TOKEN")
        }
        var security = HTTP2ServerTransport.Posix.TransportSecurity.plaintext
        if let tls {
            for path in [tls.certificateChain, tls.privateKey] where !FileManager.default.isReadableFile(atPath: path) {
                throw CloudServerError("cannot read TLS file \(path)")
            }
            security = .tls(certificateChain: [.file(path: tls.certificateChain, format: .pem)],
                            privateKey: .file(path: tls.privateKey, format: .pem))
        }
        let config = HTTP2ServerTransport.Posix.Config.defaults {
            $0.rpc.maxRequestPayloadSize = 64 << 20
            $0.connection.maxIdleTime = .milliseconds(Int64(connections.idleSeconds * 1000))
            $0.connection.keepalive.time = .milliseconds(Int64(connections.keepaliveSeconds * 1000))
            $0.connection.keepalive.timeout = .seconds(20)
            $0.http2.maxConcurrentStreams = connections.maxStreamsPerConnection
            let guardian = ConnectionGuard(handshakeSeconds: connections.handshakeSeconds, maxConnections: connections.maxConnections)
            $0.channelDebuggingCallbacks.onAcceptTCPConnection = { guardian.accept($0) }
        }
        let transport = HTTP2ServerTransport.Posix(address: try Self.listenAddress(host: host, port: port),
                                                   transportSecurity: security, config: config)
        server = GRPCServer(transport: transport, services: [service],
                            interceptors: principals.isEmpty ? [] : [BearerAuth(principals: principals)])
    }

    /// An IP literal as it is; `localhost` and other names resolved (gRPC's listener takes only addresses).
    static func listenAddress(host: String, port: Int) throws -> GRPCNIOTransportHTTP2.SocketAddress {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return .ipv4(host: host, port: port) }
        if inet_pton(AF_INET6, host, &v6) == 1 { return .ipv6(host: host, port: port) }
        if host == "localhost" { return .ipv4(host: "127.0.0.1", port: port) }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &found) == 0, let first = found, let address = first.pointee.ai_addr else {
            throw CloudServerError("cannot resolve --host \(host) to an IPv4 address")
        }
        defer { freeaddrinfo(found) }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
            var a = sin.pointee.sin_addr
            _ = inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
        }
        return .ipv4(host: String(cString: text), port: port)
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Serves until shut down; `onListening` gets the bound port.
    public func run(onListening: @escaping @Sendable (Int) -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.server.serve() }
            if let address = try await server.listeningAddress, let port = address.ipv4?.port {
                onListening(port)
            }
            try await group.waitForAll()
        }
    }

    public func shutdown() { server.beginGracefulShutdown() }
}

public struct CloudServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
