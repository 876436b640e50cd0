import CollabCore

/// The cloud refused this edge for a reason no reconnect can fix: generation stops with this error
/// (naming the cause and what to check) instead of degrading every token to the edge.
public struct CloudRefusal: Error, CustomStringConvertible, Sendable {
    public let cause: CollabError

    public init(_ cause: CollabError) { self.cause = cause }

    public var description: String {
        switch cause.code {
        case .unauthenticated:
            return "the cloud refused the token (unauthenticated): check $COLLM_TOKEN against the cloud's --token or --tokens-file (\(cause.message))"
        case .permissionDenied:
            return "the cloud denied this edge's principal (permission denied): check $COLLM_TOKEN (\(cause.message))"
        case .tls:
            return "TLS with the cloud failed: \(cause.message). For a TLS cloud pass --tls-ca PEM (or $COLLM_TLS_CA) with a "
                + "certificate that signs the cloud's; for a plaintext cloud leave both unset"
        case .fingerprintMismatch:
            return "the cloud serves another model or split (fingerprint mismatch): \(cause.message). Use the cloud's --model and --split"
        default:
            return "the cloud refused the session (\(cause.code.rawValue)): \(cause.message)"
        }
    }
}
