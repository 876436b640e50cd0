import Foundation
import NIOCore

/// Protects the gRPC listener from connections that never become gRPC: a socket must send the
/// HTTP/2 client preface (or, with TLS, at least as many bytes of its handshake) within the handshake
/// timeout, and at most `maxConnections` are open at once. gRPC's own idle timer takes over once
/// the connection is up.
final class ConnectionGuard: @unchecked Sendable {
    /// Bytes of the HTTP/2 client preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); a TLS ClientHello is longer.
    static let prefaceBytes = 24

    private let handshakeTimeout: TimeAmount
    private let maxConnections: Int
    private let lock = NSLock()
    private var open = 0  // guarded by lock

    init(handshakeSeconds: Double, maxConnections: Int) {
        handshakeTimeout = .milliseconds(Int64(handshakeSeconds * 1000))
        self.maxConnections = maxConnections
    }

    /// The transport's `onAcceptTCPConnection` callback.
    func accept(_ channel: any Channel) -> EventLoopFuture<Void> {
        let admitted = lock.withLock {
            guard open < maxConnections else { return false }
            open += 1
            return true
        }
        guard admitted else { return channel.close() }
        channel.closeFuture.whenComplete { _ in self.lock.withLock { self.open -= 1 } }
        let timeout = handshakeTimeout
        return channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(HandshakeDeadline(timeout: timeout), position: .first)
        }
    }
}

/// Closes its channel unless `ConnectionGuard.prefaceBytes` arrive before the deadline; then steps aside.
private final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var received = 0
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
        if received >= ConnectionGuard.prefaceBytes {
            deadline?.cancel()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
