import NIOCore
import NIOPosix

/// A user-space TCP proxy that behaves like an edge-cloud link (this machine's kernel has no netem):
/// every connection to `listen` is relayed to `target` with the profile's delay, rate cap and
/// jitter in each direction. `cut()` drops every connection and refuses new ones (the listening
/// socket is closed) until `restore()`.
///
/// Everything runs on one event-loop thread; the public methods hop onto it, so the emulator can be
/// shared freely.
public final class LinkEmulator: Sendable {
    private let group: MultiThreadedEventLoopGroup
    let loop: EventLoop
    let state: NIOLoopBound<State>
    /// The bound listening address (with the real port when 0 was asked for).
    public let address: HostPort
    public let target: HostPort

    private init(group: MultiThreadedEventLoopGroup, state: NIOLoopBound<State>, address: HostPort, target: HostPort) {
        self.group = group
        loop = group.next()
        self.state = state
        self.address = address
        self.target = target
    }

    /// Starts listening. The target need not be up yet: each connection dials it when accepted.
    public static func start(listen: HostPort, target: HostPort, profile: LinkProfile) async throws -> LinkEmulator {
        try profile.validate()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        do {
            let bound = try await loop.submit { () -> (NIOLoopBound<State>, EventLoopFuture<Channel>) in
                let state = NIOLoopBound(State(listen: listen, target: target, profile: profile, loop: loop), eventLoop: loop)
                return (state, state.value.bind(state, port: listen.port))
            }.get()
            let port = try await bound.1.get().localAddress?.port ?? listen.port
            try await loop.submit { bound.0.value.listen.port = port }.get()
            return LinkEmulator(group: group, state: bound.0, address: HostPort(host: listen.host, port: port), target: target)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Drops every connection (bytes in flight are lost) and refuses new ones.
    public func cut() async throws {
        let state = self.state
        try await loop.flatSubmit { state.value.cut() }.get()
    }

    /// Accepts connections again on the same address.
    public func restore() async throws {
        let state = self.state
        try await loop.flatSubmit { state.value.restore(state) }.get()
    }

    /// Changes delay, rate and jitter for existing and new connections.
    public func setProfile(_ profile: LinkProfile) async throws {
        try profile.validate()
        let state = self.state
        try await loop.submit { state.value.setProfile(profile) }.get()
    }

    public func status() async throws -> LinkStatus {
        let state = self.state
        return try await loop.submit { state.value.status }.get()
    }

    /// Closes everything and stops the event-loop thread.
    public func stop() async {
        let state = self.state
        _ = try? await loop.flatSubmit { state.value.cut() }.get()
        try? await group.shutdownGracefully()
    }
}

extension LinkEmulator {
    /// The emulator's loop-confined state.
    final class State {
        var listen: HostPort
        let target: HostPort
        var profile: LinkProfile
        let loop: EventLoop
        var server: Channel?
        var isCut = false
        var connections: [ObjectIdentifier: LinkConnection] = [:]
        let counters = LinkCounters()

        init(listen: HostPort, target: HostPort, profile: LinkProfile, loop: EventLoop) {
            self.listen = listen
            self.target = target
            self.profile = profile
            self.loop = loop
        }

        func bind(_ bound: NIOLoopBound<State>, port: Int) -> EventLoopFuture<Channel> {
            let loop = self.loop
            let future = ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    loop.assumeIsolated().submit { bound.value.accept(channel, bound) }
                }
                .bind(host: listen.host, port: port)
            future.assumeIsolated().whenSuccess { self.server = $0 }
            return future
        }

        func accept(_ inbound: Channel, _ bound: NIOLoopBound<State>) {
            if isCut {
                counters.refused += 1
                inbound.close(promise: nil)
                return
            }
            counters.accepted += 1
            let profile = self.profile
            ClientBootstrap(group: loop)
                .channelOption(.autoRead, value: false)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: target.host, port: target.port)
                .assumeIsolated()
                .whenComplete { result in
                    switch result {
                    case .success(let outbound):
                        if self.isCut || !inbound.isActive {
                            outbound.close(promise: nil)
                            inbound.close(promise: nil)
                            return
                        }
                        let connection = LinkConnection(inbound: inbound, outbound: outbound, profile: profile,
                                                        counters: self.counters)
                        let key = ObjectIdentifier(connection)
                        self.connections[key] = connection
                        inbound.closeFuture.assumeIsolated().whenComplete { _ in self.connections[key] = nil }
                        do { try connection.start() } catch { connection.cut() }
                    case .failure:
                        self.counters.failedToTarget += 1
                        inbound.close(promise: nil)
                    }
                }
        }

        func cut() -> EventLoopFuture<Void> {
            isCut = true
            for connection in connections.values { connection.cut() }
            connections.removeAll()
            guard let server else { return loop.makeSucceededVoidFuture() }
            self.server = nil
            return server.close()
        }

        func restore(_ bound: NIOLoopBound<State>) -> EventLoopFuture<Void> {
            guard isCut else { return loop.makeSucceededVoidFuture() }
            isCut = false
            return bind(bound, port: listen.port).map { _ in }
        }

        func setProfile(_ profile: LinkProfile) {
            self.profile = profile
            for connection in connections.values { connection.setProfile(profile) }
        }

        var status: LinkStatus {
            LinkStatus(listen: listen.description, target: target.description, cut: isCut,
                       delay_ms: profile.oneWayDelay * 1000, rate_mbit: (profile.rateBitsPerSecond ?? 0) / 1e6,
                       jitter_ms: profile.jitter * 1000, active_connections: connections.count,
                       accepted_connections: counters.accepted, failed_to_target: counters.failedToTarget,
                       bytes_up: counters.up.bytes, bytes_down: counters.down.bytes)
        }
    }
}
