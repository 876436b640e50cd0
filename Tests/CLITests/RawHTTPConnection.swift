import Foundation
import TestSupport

/// A bare HTTP/1.1 connection to a loopback port, so a test can send a request and then leave in
/// the middle of the answer, as a client that gives up does (URLSession offers no such control).
final class RawHTTPConnection {
    private let socket: TestSocket

    init(port: Int) throws {
        socket = try TestSocket(port: port, timeout: 60)
    }

    /// Sends a POST with a JSON body.
    func post(_ path: String, json: String) {
        try? socket.send("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)")
    }

    /// Waits for the next bytes of the answer (up to `limit`); empty when the server closed.
    func receive(limit: Int = 4096) -> String {
        String(decoding: (try? socket.receive(max: limit)) ?? [], as: UTF8.self)
    }

    /// Leaves: closes the socket whatever the server is doing.
    func close() { socket.close() }
}
