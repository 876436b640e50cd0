import ArgumentParser
import Bench
import Cloud
import CollabTransport
import Foundation
import LLM

struct CloudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud",
        abstract: "Run the cloud server: layers [split, L) for many edge sessions, plus the whole model for --mode cloud.",
        discussion: """
            Listens for gRPC on HOST:PORT. A token is required when the host is not a loopback address. One copy \
            of the weights and one thread pool serve every mode: each forward pass batches the pending rows of \
            every session (collab and spec catch-ups, naive steps, cloud-only prompts and decode steps) under \
            --max-batch-rows, chunking long prompts so they never stall the others' next tokens.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Address to listen on.") var host = "127.0.0.1"
    @Option(name: .long, help: "Port (0 picks a free one; the chosen port is printed).") var port = 50051
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Bearer token edges must present (default: $COLLM_TOKEN).") var token: String?
    @Option(name: .customLong("memory-mib"), help: "Memory budget for all sessions' KV caches and pending states.") var memoryMiB = 2048
    @Option(name: .customLong("idle-timeout"), help: "Seconds after which an idle session is closed.") var idleTimeout: Double = 600
    @Option(name: .customLong("tokens-file"), help: "File of 'NAME TOKEN' lines: one principal per edge owner; sessions are isolated by principal.") var tokensFile: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve over TLS (with --tls-key).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Flag(name: .customLong("no-full-model"), help: "Load only layers [split, L) and the head (disables --mode cloud).") var noFullModel = false
    @Option(name: .customLong("max-batch-rows"), help: "Rows per forward pass across sessions; longer catch-ups and prompts are chunked.")
    var maxBatchRows = CloudLimits().maxBatchRows
    @Option(name: .customLong("pass-target-ms"), help: "While several requests wait, long catch-ups, prompts and naive steps are chunked so that a forward pass takes about this long: the delay they add to other sessions' next tokens.")
    var passTargetMs: Double = CloudLimits().passTargetSeconds * 1000
    @Option(name: .customLong("principal-sessions"), help: "Sessions one principal may hold at once (a tokens-file line can set its own: sessions=N). Its own oldest sessions make room for its new ones; another principal's live sessions never do.")
    var principalSessions = PrincipalQuota().maxSessions
    @Option(name: .customLong("principal-memory-mib"), help: "Session memory one principal may hold (default: the whole --memory-mib; a tokens-file line can set its own: memory-mib=M).")
    var principalMemoryMiB: Int?
    @Option(name: .customLong("max-state-magnitude"), help: "Largest magnitude an uploaded state value may have; NaN, infinite or larger values are refused.")
    var maxStateMagnitude: Float = CloudLimits().maxStateMagnitude
    @Option(name: .customLong("connection-idle-s"), help: "Seconds a connection with no open stream (or a silent socket) stays open.")
    var connectionIdleSeconds = CloudServer.ConnectionLimits().idleSeconds
    @Option(name: .customLong("handshake-timeout-s"), help: "Seconds a new connection has to send the HTTP/2 preface (or its TLS handshake) before it is closed.")
    var handshakeSeconds = CloudServer.ConnectionLimits().handshakeSeconds
    @Option(name: .customLong("max-connections"), help: "Connections open at once; more are closed on accept.")
    var maxConnections = CloudServer.ConnectionLimits().maxConnections
    @Option(name: .customLong("max-streams-per-connection"), help: "Concurrent streams one connection may open.")
    var maxStreamsPerConnection = CloudServer.ConnectionLimits().maxStreamsPerConnection
    @Option(name: .customLong("drain-s"), help: "On SIGTERM or SIGINT: seconds open session streams may go on before they are closed (their edges move to another replica with RESYNC). A second signal stops at once.") var drainSeconds: Double = 30

    func validate() throws {
        if port < 0 || port > 65535 { throw ValidationError("--port must be 0...65535") }
        if memoryMiB < 1 { throw ValidationError("--memory-mib must be positive") }
        if maxBatchRows < 1 || maxBatchRows > 65536 { throw ValidationError("--max-batch-rows must be 1...65536") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if !(drainSeconds >= 0) || !drainSeconds.isFinite { throw ValidationError("--drain-s must be a number >= 0") }
        if !(passTargetMs > 0) || !passTargetMs.isFinite { throw ValidationError("--pass-target-ms must be a positive number") }
        if principalSessions < 1 { throw ValidationError("--principal-sessions must be positive") }
        if let principalMemoryMiB, principalMemoryMiB < 1 { throw ValidationError("--principal-memory-mib must be positive") }
        if !(maxStateMagnitude > 0) || !maxStateMagnitude.isFinite { throw ValidationError("--max-state-magnitude must be a positive number") }
        if !(connectionIdleSeconds > 0) || !connectionIdleSeconds.isFinite { throw ValidationError("--connection-idle-s must be a positive number") }
        if !(handshakeSeconds > 0) || !handshakeSeconds.isFinite { throw ValidationError("--handshake-timeout-s must be a positive number") }
        if maxConnections < 1 { throw ValidationError("--max-connections must be positive") }
        if maxStreamsPerConnection < 1 { throw ValidationError("--max-streams-per-connection must be positive") }
        if !(idleTimeout > 0) || !idleTimeout.isFinite { throw ValidationError("--idle-timeout must be a positive number") }
    }

    func run() async throws {
        let (gguf, _) = try modelOptions.openModelFile()
        let config = try ModelConfig(gguf: gguf)
        let split = try SplitDefault.resolve(splitOption, layerCount: config.layerCount)
        MemoryRelease.mapLargeAllocations()
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        var limits = CloudLimits()
        limits.memoryBudgetBytes = memoryMiB << 20
        limits.idleTimeoutSeconds = idleTimeout
        limits.maxBatchRows = maxBatchRows
        limits.maxStateMagnitude = maxStateMagnitude
        limits.passTargetSeconds = passTargetMs / 1000
        limits.principalQuota = PrincipalQuota(maxSessions: principalSessions, maxBytes: principalMemoryMiB.map { $0 << 20 })
        let token = self.token ?? ProcessInfo.processInfo.environment["COLLM_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var principals = Principals(tokens: token.map { [$0: "default"] } ?? [:])
        if let tokensFile { principals = principals + (try Principals(file: tokensFile, defaultQuota: limits.principalQuota)) }
        limits.principalQuotas = principals.quotas
        let layers = noFullModel ? split..<config.layerCount : 0..<config.layerCount
        let model = try LlamaModel(file: gguf, layers: layers, activations: modelOptions.activations, pool: pool)
        let manager = ContextManager(model: model, fingerprint: gguf.fingerprint(), limits: limits, splitLayer: split)
        let engine = CloudEngine(manager: manager)
        var connections = CloudServer.ConnectionLimits()
        connections.idleSeconds = connectionIdleSeconds
        connections.maxStreamsPerConnection = maxStreamsPerConnection
        connections.handshakeSeconds = handshakeSeconds
        connections.maxConnections = maxConnections
        let server = try CloudServer(host: host, port: port, service: CloudService(engine: engine, principals: principals),
                                     principals: principals,
                                     tls: tlsCert.map { CloudServer.TLSFiles(certificateChain: $0, privateKey: tlsKey!) },
                                     connections: connections)
        let host = self.host
        let scheme = tlsCert == nil ? "plaintext" : "TLS"
        let serving = Task {
            try await server.run { port in
                Console.status("collm cloud listening on \(host):\(port) (\(scheme), layers \(split)..<\(config.layerCount), \(modelOptions.activations.rawValue) activations)")
            }
        }
        // Graceful drain (a rolling restart's step): the first signal stops accepting streams and lets
        // open ones finish for up to --drain-s; then (or on a second signal) the rest are cancelled.
        let drain = drainSeconds
        let signalQueue = DispatchQueue(label: "collm.cloud.signals")
        let state = DrainState()  // touched only on signalQueue
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            source.setEventHandler {
                if state.draining {
                    Console.status("stopping now")
                    serving.cancel()
                    return
                }
                state.draining = true
                Console.status("draining: no new streams; open ones may go on for \(drain) s")
                server.shutdown()
                signalQueue.asyncAfter(deadline: .now() + drain) { serving.cancel() }
            }
            source.resume()
            return source
        }
        do {
            try await serving.value
        } catch where serving.isCancelled {
            // The drain ran out (or a second signal came): open streams were cancelled.
        }
        engine.shutdown()
        Console.status("collm cloud stopped")
        // A real use after the server stops: an unused array could be released early in optimized builds,
        // and with it the signal sources (SIGINT/SIGTERM would then do nothing, since they are ignored above).
        signals.forEach { $0.cancel() }
    }
}

/// Whether a drain has begun (a second signal stops at once).
private final class DrainState: @unchecked Sendable {
    var draining = false
}
