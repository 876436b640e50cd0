import NIOCore

/// Sits in one socket's pipeline: what the socket reads goes into `outgoing` (towards the peer);
/// the socket's writability paces `incoming` (from the peer), whose sink this socket is.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let outgoing: ShapedDirection
    let incoming: ShapedDirection

    init(outgoing: ShapedDirection, incoming: ShapedDirection) {
        self.outgoing = outgoing
        self.incoming = incoming
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        outgoing.enqueue(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        outgoing.readCompleted()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        incoming.readIfRoom()
    }

    func channelInactive(context: ChannelHandlerContext) {
        outgoing.sourceDidClose()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
