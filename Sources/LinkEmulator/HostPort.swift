/// A "HOST:PORT" endpoint as the command line spells it (IPv6 hosts in brackets: "[::1]:8080").
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses HOST:PORT; `allowZero` admits port 0 (let the system pick) for listening addresses.
    public init(parsing text: String, allowZero: Bool = false) throws {
        guard let colon = text.lastIndex(of: ":") else {
            throw LinkEmulatorError("'\(text)' is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw LinkEmulatorError("'\(text)' has no host (use e.g. 127.0.0.1:\(text.dropFirst()))") }
        guard let port = Int(text[text.index(after: colon)...]), port >= (allowZero ? 0 : 1), port <= 65535 else {
            throw LinkEmulatorError("'\(text)' has no valid port (\(allowZero ? 0 : 1)...65535)")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
