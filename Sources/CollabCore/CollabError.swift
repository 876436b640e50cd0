/// Protocol-level failures, each with a code the peer can act on (retry, resync, give up).
public struct CollabError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case invalidArgument = "invalid_argument"
        case fingerprintMismatch = "fingerprint_mismatch"
        case unknownSession = "unknown_session"
        /// The resumed session was evicted or expired: open a new one and replay (the proto's Resync).
        case resync
        case permissionDenied = "permission_denied"
        case resourceExhausted = "resource_exhausted"
        case outOfOrder = "out_of_order"
        case unauthenticated
        case unavailable
        /// The TLS handshake with the cloud failed (untrusted certificate, or one side speaks plaintext).
        case tls
        case `internal`
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// A misconfiguration that no reconnect can fix (wrong token or principal, TLS set up differently
    /// on the two sides, another model or split): the edge must stop and say so instead of degrading.
    public var isRefusal: Bool {
        // invalid_argument: the cloud rejects what this edge sends (states out of range, a protocol
        // version it does not speak); every reconnect would be rejected the same way.
        [.unauthenticated, .permissionDenied, .tls, .fingerprintMismatch, .invalidArgument].contains(code)
    }
}
