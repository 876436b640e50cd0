import NIOCore

/// One proxied TCP connection: the accepted socket (the edge side), the socket to the target (the
/// cloud side), and a shaped direction each way. Loop-confined.
final class LinkConnection {
    let inbound: Channel
    let outbound: Channel
    let up: ShapedDirection
    let down: ShapedDirection

    init(inbound: Channel, outbound: Channel, profile: LinkProfile, counters: LinkCounters) {
        self.inbound = inbound
        self.outbound = outbound
        up = ShapedDirection(source: inbound, sink: outbound, profile: profile, counters: counters.up)
        down = ShapedDirection(source: outbound, sink: inbound, profile: profile, counters: counters.down)
    }

    /// Installs the relays and starts reading both sockets.
    func start() throws {
        try inbound.pipeline.syncOperations.addHandler(RelayHandler(outgoing: up, incoming: down))
        try outbound.pipeline.syncOperations.addHandler(RelayHandler(outgoing: down, incoming: up))
        up.readIfRoom()
        down.readIfRoom()
    }

    func setProfile(_ profile: LinkProfile) {
        up.shaper.profile = profile
        down.shaper.profile = profile
    }

    /// Cuts the connection: whatever is in flight is lost.
    func cut() {
        up.cancel()
        down.cancel()
        inbound.close(promise: nil)
        outbound.close(promise: nil)
    }
}

/// Bytes delivered per direction and connection counts, for the status report.
final class LinkCounters {
    let up = TrafficCounter()
    let down = TrafficCounter()
    var accepted = 0
    var refused = 0
    var failedToTarget = 0
}
