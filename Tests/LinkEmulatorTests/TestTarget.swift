import Foundation
import NIOCore
import NIOPosix

/// The far end of the emulated link in tests: a loopback TCP server whose behaviour is chosen by
/// the first byte a client sends — 'E' echoes, 'D' + "N\n" sends N bytes back, 'U' swallows an
/// upload while recording when each byte arrived.
final class TestTarget: @unchecked Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private(set) var port = 0
    private let lock = NSLock()
    private var arrivals: [(time: UInt64, bytes: Int)] = []

    init() throws {
        let target = self
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(target: target))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress!.port!
    }

    /// Upload arrival log: (monotonic nanoseconds, bytes) per read.
    var uploadArrivals: [(time: UInt64, bytes: Int)] { lock.withLock { arrivals } }

    func record(_ bytes: Int) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.withLock { arrivals.append((now, bytes)) }
    }

    func stop() { try? group.syncShutdownGracefully() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let target: TestTarget
        var mode: UInt8?
        var header = ""

        init(target: TestTarget) { self.target = target }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            if mode == nil { mode = buffer.readInteger(as: UInt8.self) }
            switch mode {
            case UInt8(ascii: "E"):
                if buffer.readableBytes > 0 { context.writeAndFlush(NIOAny(buffer), promise: nil) }
            case UInt8(ascii: "U"):
                target.record(buffer.readableBytes)
            case UInt8(ascii: "D"):
                header += buffer.readString(length: buffer.readableBytes) ?? ""
                if header.hasSuffix("\n"), let n = Int(header.dropLast()) {
                    header = ""
                    let payload = context.channel.allocator.buffer(repeating: 0x5A, count: n)
                    context.writeAndFlush(NIOAny(payload), promise: nil)
                }
            default:
                context.close(promise: nil)
            }
        }
    }
}
