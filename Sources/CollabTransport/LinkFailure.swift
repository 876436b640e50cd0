import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

extension GRPCConnector {
    /// Why a session stream failed, in the terms the edge acts on: a cloud that refuses this edge
    /// (wrong token or principal, TLS set up differently on the two sides) is a misconfiguration to
    /// report, not an outage to degrade through. Everything else is `unavailable`.
    func classify(_ error: Error) async -> CollabError {
        guard let rpc = error as? RPCError else { return CollabError(.unavailable, "cloud stream failed: \(error)") }
        switch rpc.code {
        case .unauthenticated: return CollabError(.unauthenticated, rpc.message)
        case .permissionDenied: return CollabError(.permissionDenied, rpc.message)
        default: break
        }
        // NIOSSL reports a failed handshake (untrusted certificate, a plaintext server) as its cause.
        if let cause = rpc.cause, String(describing: cause).hasPrefix("handshakeFailed") {
            let detail = String(describing: cause)
            let why = detail.contains("CERTIFICATE_VERIFY_FAILED") ? "the cloud's certificate is not signed by the trusted one"
                : detail.contains("WRONG_VERSION_NUMBER") ? "the cloud does not speak TLS" : detail
            return CollabError(.tls, "the TLS handshake with \(host):\(port) failed: \(why)")
        }
        // A TLS server drops a plaintext client's HTTP/2 preface without a word, which looks like an
        // outage: ask the server in TLS whether that is what it speaks.
        if trustRoots == nil, rpc.code == .unavailable, await answersTLS() {
            return CollabError(.tls, "the cloud at \(host):\(port) speaks TLS and this edge plaintext")
        }
        return CollabError(.unavailable, "cloud stream failed: \(rpc)")
    }

    /// Whether the server completes a TLS handshake and answers a Health call over it (any answer,
    /// a refusal for the missing token included), trusting whatever certificate it shows: so the
    /// call carries no token. At most 3 s.
    private func answersTLS() async -> Bool {
        guard let transport = try? HTTP2ClientTransport.Posix(
            target: target,
            transportSecurity: .tls { $0.serverCertificateVerification = .noVerification }) else { return false }
        var options = CallOptions.defaults
        options.timeout = .seconds(3)
        do {
            _ = try await withGRPCClient(transport: transport) { client in
                try await Collm_V1_Collab.Client(wrapping: client).health(
                    request: ClientRequest(message: Collm_V1_HealthRequest()), options: options) { try $0.message }
            }
            return true
        } catch let error as RPCError {
            return error.code != .unavailable && error.code != .deadlineExceeded
        } catch {
            return false
        }
    }
}
