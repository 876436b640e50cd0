import ArgumentParser
import Bench
import CollabTransport
import Foundation

/// `collm health`: one Health RPC to a cloud replica (or through a balancer, to whichever replica
/// it picks): sessions held, memory and work counters.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask a cloud server for its health: open sessions, resident memory, work counters.",
        discussion: "Uses $COLLM_TOKEN as the bearer token when set. Exits non-zero when the cloud does not answer.")

    @Option(name: .long, help: "Cloud server HOST:PORT.") var cloud: String
    @Option(name: .customLong("tls-ca"), help: "PEM certificate(s) to trust: talk TLS to the cloud (default: $COLLM_TLS_CA).") var tlsCA: String?
    @Option(name: .long, help: "Seconds to wait for the answer.") var timeout: Double = 10
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    func validate() throws {
        if !(timeout > 0) { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let (address, roots) = (cloud, CloudClientEnvironment.trustRoots(tlsCA))
        _ = try GRPCConnector(address: address, token: nil)  // a malformed address is a usage error, not a timeout
        let timeout = self.timeout
        let health = try await withThrowingTaskGroup(of: CloudHealth?.self) { group in
            group.addTask { try await CloudHealth.probe(address: address, token: CloudClientEnvironment.token, trustRoots: roots) }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let health = first else {
                throw CLIError("no answer from \(address) within \(timeout) s")
            }
            return health
        }
        if json {
            try Console.printJSON(health)
        } else {
            let mib = String(format: "%.1f", Double(health.rssBytes) / 1_048_576)
            Console.write("\(address): \(health.status), \(health.sessions) sessions, \(mib) MiB resident, split \(health.splitLayer)\n")
        }
    }
}
