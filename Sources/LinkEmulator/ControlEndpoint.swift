import Foundation
import NIOCore
import NIOPosix

/// A tiny line protocol to steer a running emulator from scripts (`nc`, a test):
///   `cut`, `restore`, `status`, `set delay-ms D rate-mbit R jitter-ms J` (any subset of the pairs).
/// Every command is answered with one line of JSON: the status after the command, or `{"error": ...}`.
/// Unauthenticated, so the command line only lets it listen on loopback.
extension LinkEmulator {
    /// Starts the control endpoint; returns its bound address.
    public func startControl(at address: HostPort) async throws -> HostPort {
        let state = self.state
        let loop = self.loop
        let channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                loop.assumeIsolated().submit {
                    try channel.pipeline.syncOperations.addHandler(ControlHandler(state: state))
                }
            }
            .bind(host: address.host, port: address.port).get()
        return HostPort(host: address.host, port: channel.localAddress?.port ?? address.port)
    }
}

final class ControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let state: NIOLoopBound<LinkEmulator.State>
    private var pending = ""

    init(state: NIOLoopBound<LinkEmulator.State>) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending += buffer.readString(length: buffer.readableBytes) ?? ""
        guard pending.count < 4096 else {
            context.close(promise: nil)
            return
        }
        while let newline = pending.firstIndex(of: "\n") {
            let line = pending[..<newline].trimmingCharacters(in: .whitespacesAndNewlines)
            pending = String(pending[pending.index(after: newline)...])
            if line.isEmpty { continue }
            let context = NIOLoopBound(context, eventLoop: context.eventLoop)
            execute(line).assumeIsolated().whenComplete { result in
                let reply: String
                switch result {
                case .success(let status): reply = Self.json(status)
                case .failure(let error): reply = Self.json(["error": "\(error)"])
                }
                let ctx = context.value
                ctx.writeAndFlush(NIOAny(ctx.channel.allocator.buffer(string: reply + "\n")), promise: nil)
            }
        }
    }

    private func execute(_ line: String) -> EventLoopFuture<LinkStatus> {
        let state = self.state
        let words = line.split(separator: " ").map(String.init)
        let emulator = state.value
        let done: EventLoopFuture<Void>
        switch words.first?.lowercased() {
        case "cut": done = emulator.cut()
        case "restore": done = emulator.restore(state)
        case "status": done = emulator.loop.makeSucceededVoidFuture()
        case "set":
            do {
                emulator.setProfile(try Self.profile(emulator.profile, applying: Array(words.dropFirst())))
                done = emulator.loop.makeSucceededVoidFuture()
            } catch {
                done = emulator.loop.makeFailedFuture(error)
            }
        default:
            done = emulator.loop.makeFailedFuture(LinkEmulatorError("unknown command '\(line)' (cut, restore, status, set delay-ms D rate-mbit R jitter-ms J)"))
        }
        return done.assumeIsolated().map { state.value.status }.nonisolated()
    }

    /// Applies `key value` pairs to a profile.
    static func profile(_ base: LinkProfile, applying words: [String]) throws -> LinkProfile {
        guard !words.isEmpty, words.count % 2 == 0 else { throw LinkEmulatorError("set takes pairs: delay-ms D rate-mbit R jitter-ms J") }
        var profile = base
        for i in stride(from: 0, to: words.count, by: 2) {
            guard let value = Double(words[i + 1]), value.isFinite, value >= 0 else {
                throw LinkEmulatorError("'\(words[i + 1])' is not a number >= 0")
            }
            switch words[i] {
            case "delay-ms": profile.oneWayDelay = value / 1000
            case "rate-mbit": profile.rateBitsPerSecond = value > 0 ? value * 1e6 : nil
            case "jitter-ms": profile.jitter = value / 1000
            default: throw LinkEmulatorError("unknown setting '\(words[i])' (delay-ms, rate-mbit, jitter-ms)")
            }
        }
        try profile.validate()
        return profile
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
