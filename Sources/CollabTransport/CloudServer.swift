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

    public init(host: String, port: Int, service: CloudService, principals: Principals, tls: TLSFiles? = nil) throws {
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
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: security,
                                                   config: .defaults { $0.rpc.maxRequestPayloadSize = 64 << 20 })
        server = GRPCServer(transport: transport, services: [service],
                            interceptors: principals.isEmpty ? [] : [BearerAuth(principals: principals)])
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
