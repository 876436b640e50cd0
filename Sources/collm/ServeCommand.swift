import ArgumentParser
import Bench
import CollabCore
import CollabTransport
import Edge
import Exits
import Foundation
import LLM
import Serve

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the edge over an OpenAI-compatible HTTP API.",
        discussion: """
            POST /v1/chat/completions and /v1/completions (\"stream\": true for server-sent events), GET /v1/models, \
            /health and /metrics (Prometheus). Requests run one at a time on the edge in the chosen mode, up to \
            --max-queue more wait (beyond that: 503 with Retry-After), and a request whose client disconnects stops \
            within one token. Responses carry a "collm" object saying which tokens the edge and the cloud decided. \
            Listening beyond loopback requires --api-key (or $COLLM_API_KEY); clients then send \
            'Authorization: Bearer KEY'. A cloud that refuses this edge (token, TLS, model or split) stops the \
            server at start-up.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var chatTemplate: ChatTemplateOptions
    @Option(name: .long, help: "Address to listen on.") var host = "127.0.0.1"
    @Option(name: .long, help: "Port (0 picks a free one; the chosen port is printed).") var port = 8080
    @Option(name: .long, help: "Mode: \(EdgeWorker.modes.map(\.rawValue).joined(separator: "|")).") var mode: GenerationMode = .collab
    @Option(name: .long, help: "Cloud server HOST:PORT (collab, spec; default: a cloud embedded in this process).") var cloud: String?
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Exit threshold for every exit (default: the calibration's; spec drafts at 0.5).") var threshold: Float?
    @Option(name: .long, help: "Exit calibration file (default: the cached one; 'none': logit lens).") var calibration: String?
    @Option(name: .long, help: "Hidden-state wire format: f32|f16|q8 (default: f16 to a remote cloud, f32 to the embedded one).") var wire: String?
    @Option(name: .long, help: "Context length (KV positions) per request.") var ctx = 2048
    @Option(name: .customLong("tls-ca"), help: "PEM certificate(s) to trust: talk TLS to the cloud (default: $COLLM_TLS_CA).") var tlsCA: String?
    @Option(name: .customLong("max-queue"), help: "Requests that may wait behind the running one; more get 503 with Retry-After.") var maxQueue = 16
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every route but /health (default: $COLLM_API_KEY; required beyond loopback).") var apiKey: String?
    @OptionGroup var cloudLoss: CloudLossOptions

    func validate() throws {
        guard EdgeWorker.modes.contains(mode) else {
            throw ValidationError("--mode must be \(EdgeWorker.modes.map(\.rawValue).joined(separator: ", "))")
        }
        if port < 0 || port > 65535 { throw ValidationError("--port must be 0...65535") }
        if let wire, WireFormat(rawValue: wire) == nil { throw ValidationError("--wire must be f32, f16 or q8") }
        if ctx < 16 { throw ValidationError("--ctx must be at least 16") }
        if maxQueue < 0 { throw ValidationError("--max-queue must be >= 0") }
        if resolvedAPIKey == nil && !Self.isLoopback(host) {
            throw ValidationError("--host \(host) listens beyond loopback: set --api-key KEY (or $COLLM_API_KEY), which clients then send as 'Authorization: Bearer KEY'")
        }
        if let calibration, calibration != "none", !FileManager.default.fileExists(atPath: calibration) {
            throw ValidationError("calibration file not found: \(calibration)")
        }
    }

    /// The API key: the option, else $COLLM_API_KEY (empty: none).
    var resolvedAPIKey: String? {
        (apiKey ?? ProcessInfo.processInfo.environment["COLLM_API_KEY"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Addresses only this machine can reach.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func run() async throws {
        let path = try modelOptions.resolvedModelPath()
        let (gguf, tokenizer) = try modelOptions.openModelFile()
        // A model without a known template still serves /v1/completions; chat requests get the error.
        let chatFormat: ChatFormat?
        var chatFormatMissing: String?
        do {
            chatFormat = try chatTemplate.chatFormat(gguf: gguf, tokenizer: tokenizer)
        } catch {
            chatFormat = nil
            chatFormatMissing = "\(error)"
            Console.status("note: /v1/chat/completions is off: \(error)")
        }
        let split = try SplitDefault.resolve(splitOption, gguf: gguf)
        var setup = try EdgeSetup(gguf: gguf, tokenizer: tokenizer, mode: mode, split: split, threshold: threshold,
                                  calibration: calibration, activations: modelOptions.activations,
                                  threads: modelOptions.threadCount)
        setup.options.maxPositions = ctx
        // Without --cloud, collab and spec use a cloud in this process (loopback gRPC, f32 states).
        let embedded = (mode == .collab || mode == .spec) && cloud == nil
            ? try await EmbeddedCloud.start(file: gguf, split: split, activations: modelOptions.activations,
                                            threads: modelOptions.threadCount)
            : nil
        setup.options.wire = WireFormat(rawValue: wire ?? (embedded == nil ? "f16" : "f32"))!
        cloudLoss.apply(to: &setup.options)
        let connector = try (embedded?.address ?? cloud).map {
            try GRPCConnector(address: $0, token: CloudClientEnvironment.token,
                              trustRoots: embedded == nil ? CloudClientEnvironment.trustRoots(tlsCA) : nil)
        }
        // Degradation episodes go to stderr and to /metrics.
        let metrics = ServeMetrics()
        setup.options.outageMonitor = CloudOutageMonitor { event in
            Console.status(event.message)
            metrics.record(event)
        }
        if let connector, mode == .collab || mode == .spec {
            // A cloud that refuses this edge (token, TLS, model or split) stops the server now, not at
            // the first request; an unreachable one is announced and requests degrade until it answers.
            do {
                try await CloudPreflight.check(connector: connector, fingerprint: setup.fingerprint, splitLayer: split,
                                               options: setup.options)
            } catch {
                await embedded?.shutdown()
                throw error
            }
        }
        let worker = EdgeWorker(setup: setup, connector: connector, maxQueue: maxQueue)
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var server = APIServer(worker: worker, metrics: metrics, modelName: name, chatFormat: chatFormat, apiKey: resolvedAPIKey)
        if let chatFormatMissing { server.chatFormatMissing = chatFormatMissing }
        let (host, modeName, calibrationNote) = (self.host, mode.rawValue, setup.calibrationPath.map { " calibration \($0)," } ?? "")
        let cloudNote = embedded == nil ? "" : " embedded cloud,"
        do {
            try await server.run(host: host, port: port) { port in
                Console.status("collm serve listening on http://\(host):\(port) (mode \(modeName),\(cloudNote)\(calibrationNote) model \(name), chat template \(chatFormat?.template.name ?? "none"))")
            }
        } catch {
            await embedded?.shutdown()
            throw error
        }
        await embedded?.shutdown()
    }
}
