import ArgumentParser
import Bench
import Foundation
import LinkEmulator

/// `collm linkem`: the edge-cloud link emulator as a standalone proxy, so any client/server pair
/// (e.g. `collm generate --mode collab --cloud` and `collm cloud`) can be run over a slow link.
struct LinkemCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linkem",
        abstract: "Emulate an edge-cloud link: a TCP proxy with delay, rate cap, jitter and cut/restore.",
        discussion: """
            Every TCP connection to --listen is relayed to --target. Each direction gets the one-way delay \
            (so RTT = 2 x --delay-ms), its own rate cap (bytes are serialised at --rate-mbit, then delayed) and \
            optional jitter (uniform +-J ms per chunk; bytes are never reordered: a late chunk holds back later ones).

            Cut and restore: send SIGUSR1 to cut (existing connections are dropped, new ones refused) and SIGUSR2 \
            to restore; or start a control endpoint with --control 127.0.0.1:PORT and send one command per line: \
            cut | restore | status | set delay-ms D rate-mbit R jitter-ms J. Each command is answered with one \
            JSON line (the status). SIGINT/SIGTERM stop the proxy.

            Example (RTT 100 ms, 10 Mbit/s in front of a cloud on port 50051):
              collm linkem --listen 127.0.0.1:50052 --target 127.0.0.1:50051 --delay-ms 50 --rate-mbit 10
            """)

    @Option(name: .long, help: "Address to accept connections on, HOST:PORT (port 0 picks a free one; it is printed).")
    var listen: String
    @Option(name: .long, help: "Address to relay to, HOST:PORT (e.g. the collm cloud server).")
    var target: String
    @Option(name: .customLong("delay-ms"), help: "One-way delay in milliseconds, applied in each direction (RTT = 2x).")
    var delayMs: Double
    @Option(name: .customLong("rate-mbit"), help: "Rate cap per direction in Mbit/s (0 = unlimited).")
    var rateMbit: Double
    @Option(name: .customLong("jitter-ms"), help: "Uniform delay variation +-J milliseconds per chunk.")
    var jitterMs: Double = 0
    @Option(name: .long, help: "Loopback HOST:PORT for the control endpoint (cut, restore, status, set).")
    var control: String?

    func validate() throws {
        do {
            _ = try HostPort(parsing: listen, allowZero: true)
            _ = try HostPort(parsing: target)
            if let control {
                let address = try HostPort(parsing: control, allowZero: true)
                guard address.host == "localhost" || address.host == "::1" || address.host.hasPrefix("127.") else {
                    throw ValidationError("--control must be a loopback address (it has no authentication), got \(control)")
                }
            }
        } catch let error as LinkEmulatorError {
            throw ValidationError("\(error)")
        }
        guard delayMs.isFinite, delayMs >= 0 else { throw ValidationError("--delay-ms must be >= 0 (got \(delayMs))") }
        guard rateMbit.isFinite, rateMbit >= 0 else { throw ValidationError("--rate-mbit must be >= 0; 0 means unlimited (got \(rateMbit))") }
        guard jitterMs.isFinite, jitterMs >= 0 else { throw ValidationError("--jitter-ms must be >= 0 (got \(jitterMs))") }
    }

    func run() async throws {
        let profile = LinkProfile(delayMs: delayMs, rateMbit: rateMbit, jitterMs: jitterMs)
        let link: LinkEmulator
        do {
            link = try await LinkEmulator.start(listen: HostPort(parsing: listen, allowZero: true),
                                                target: HostPort(parsing: target), profile: profile)
        } catch {
            throw CLIError("cannot listen on \(listen): \(error)")
        }
        var controlNote = ""
        if let control {
            do {
                let bound = try await link.startControl(at: HostPort(parsing: control, allowZero: true))
                controlNote = "; control on \(bound)"
            } catch {
                await link.stop()
                throw CLIError("cannot start the control endpoint on \(control): \(error)")
            }
        }
        let (stopped, stop) = AsyncStream.makeStream(of: Void.self)
        let handlers: [(Int32, @Sendable () -> Void)] = [
            (SIGUSR1, { Task { try? await link.cut(); Console.status("linkem: link cut") } }),
            (SIGUSR2, { Task { try? await link.restore(); Console.status("linkem: link restored") } }),
            (SIGINT, { stop.finish() }),
            (SIGTERM, { stop.finish() }),
        ]
        let sources = handlers.map { sig, handler -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig)
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
        Console.status("linkem listening on \(link.address) -> \(link.target) (\(profile))\(controlNote)")
        for await _ in stopped {}
        await link.stop()
        sources.forEach { $0.cancel() }
        Console.status("linkem stopped")
    }
}
