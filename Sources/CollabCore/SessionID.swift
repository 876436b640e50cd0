/// A session's identity: 128 random bits, unguessable, so one edge cannot name another's session.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public static func random() -> SessionID {
        var rng = SystemRandomNumberGenerator()
        return SessionID(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })!
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
