import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback TCP client with a receive timeout, so tests read like a user's program.
public final class TestSocket {
    let fd: Int32
    private var closed = false

    /// Connects to 127.0.0.1:port; throws when refused.
    public init(port: Int, timeout: Double = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let e = errno
            Glibc.close(fd)
            throw TestSocketError("connect: errno \(e)")
        }
    }

    deinit { close() }

    /// Closes the connection, whatever the peer is doing (a client that leaves).
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestSocketError("send: errno \(errno)") }
            offset += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads up to `max` bytes; an empty result means the peer closed (or reset) the connection.
    public func receive(max: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        if n < 0 {
            if errno == ECONNRESET { return [] }
            throw TestSocketError("recv: errno \(errno) (timeout?)")
        }
        return Array(buffer[..<n])
    }

    /// Reads exactly `count` bytes, calling `onChunk` with the time of each read.
    public func receive(exactly count: Int, onChunk: (UInt64, Int) -> Void = { _, _ in }) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let chunk = try receive(max: count - out.count)
            guard !chunk.isEmpty else { throw TestSocketError("closed after \(out.count) of \(count) bytes") }
            onChunk(DispatchTime.now().uptimeNanoseconds, chunk.count)
            out += chunk
        }
        return out
    }
}

public struct TestSocketError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
