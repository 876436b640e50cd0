import ArgumentParser
import Bench
import CollabCore
import CollabTransport
import Edge
import Exits
import Foundation
import LLM

extension GenerationMode: ExpressibleByArgument {}

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt.",
        discussion: """
            Modes: local (full model in this process), edge (standalone early exit), collab (CE-CoLLM), \
            cloud (whole model in the cloud server), naive (split without context manager), spec (lossless \
            speculative). Streams text to stdout unless --json. A cloud that refuses the edge (wrong $COLLM_TOKEN, \
            TLS set up differently on the two sides, another model or split) ends the run with an error; an \
            unreachable one degrades to the edge, announced on stderr when it begins and ends.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "The prompt text.") var prompt: String
    @Flag(name: .long, help: "Wrap the prompt as a user turn in the model's chat template (see --template).") var chat = false
    @OptionGroup var chatTemplate: ChatTemplateOptions
    @Option(name: .long, help: "System message for --chat (default: the model's default).") var system: String?
    @Option(name: .customLong("max-tokens"), help: "Maximum tokens to generate.") var maxTokens = 128
    @Option(name: .long, help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: off).") var topK = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1: off).") var topP: Float = 1
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p times the top probability (0: off).") var minP: Float = 0
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1: off).") var repeatPenalty: Float = 1
    @Option(name: .long, help: "Random seed for sampling.") var seed: UInt64?
    @Option(name: .long, help: "Mode: \(GenerationMode.allCases.map(\.rawValue).joined(separator: "|")).") var mode: GenerationMode = .local
    @Option(name: .long, help: "Cloud server HOST:PORT (collab, cloud, naive, spec; default: a cloud embedded in this process, over loopback gRPC).") var cloud: String?
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Exit layers, comma separated.") var exits: String?
    @Option(name: .long, help: "Exit confidence threshold.") var threshold: Float?
    @Option(name: .long, help: "Hidden-state wire format: f32|f16|q8 (default: f16 to a remote cloud, f32 to the embedded one).") var wire: String?
    @Option(name: .long, help: "Context length (KV cache positions) to allow.") var ctx: Int?
    @Option(name: .customLong("tls-ca"), help: "PEM certificate(s) to trust: talk TLS to the cloud (default: $COLLM_TLS_CA; unset: plaintext).") var tlsCA: String?
    @Option(name: .long, help: "Exit calibration file (default: the cached one for this model and split, if any; 'none': logit lens).") var calibration: String?
    @Option(name: .customLong("latency-aware"), help: "MIN,MAX: let exit thresholds follow the cloud round trip within these bounds (collab).") var latencyAware: String?
    @Option(name: .customLong("rtt-reference-ms"), help: "Round trip at which latency-aware thresholds equal the calibrated ones.") var referenceRTTms = 20.0
    @OptionGroup var cloudLoss: CloudLossOptions
    @Flag(name: .long, help: "Print one JSON object instead of streaming text.") var json = false

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0") }
        if let ctx, ctx < 1 { throw ValidationError("--ctx must be positive") }
        try sampling.validate()
        if mode == .spec && repeatPenalty != 1 {
            throw ValidationError("--mode spec verifies drafts without the prompt's token history: use --repeat-penalty 1")
        }
        if let wire, WireFormat(rawValue: wire) == nil { throw ValidationError("--wire must be f32, f16 or q8") }
        if let threshold, !(threshold >= 0) { throw ValidationError("--threshold must be >= 0") }
        _ = try exitLayers()
        if let latencyAware { _ = try ListArgument.bounds(latencyAware, option: "--latency-aware") }
        if let calibration, calibration != "none", !FileManager.default.fileExists(atPath: calibration) {
            throw ValidationError("calibration file not found: \(calibration)")
        }
        if !(referenceRTTms > 0) { throw ValidationError("--rtt-reference-ms must be positive") }
    }

    var trustRoots: String? { CloudClientEnvironment.trustRoots(tlsCA) }

    var sampling: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        p.repetitionPenalty = repeatPenalty
        p.seed = seed
        return p
    }

    func exitLayers() throws -> [Int] {
        guard let exits, !exits.isEmpty else { return [] }
        return try ListArgument.layers(exits, option: "--exits")
    }

    func run() async throws {
        let path = try modelOptions.resolvedModelPath()
        let gguf = try GGUFFile(path: path)
        let tokenizer = try Tokenizer(gguf: gguf)
        let text: String
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            text = try chatTemplate.chatFormat(gguf: gguf, tokenizer: tokenizer).render(messages)
        } else {
            text = prompt
        }
        let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: chat)
        let split = try SplitDefault.resolve(splitOption, gguf: gguf)
        // Without --cloud, the split modes talk to a cloud in this process: nothing crosses a network,
        // so states travel as f32 and the cloud's answers are the full model's.
        var embedded: EmbeddedCloud?
        if mode.needsCloud && cloud == nil {
            embedded = try await EmbeddedCloud.start(file: gguf, split: split, activations: modelOptions.activations,
                                                     threads: modelOptions.threadCount)
        }
        do {
            var output = try await generate(gguf: gguf, tokenizer: tokenizer, split: split, prompt: ids, path: path,
                                            cloud: embedded?.address ?? cloud, wire: wire ?? (embedded == nil ? "f16" : "f32"))
            await embedded?.shutdown()
            output.mode = mode.rawValue
            output.cloud = embedded == nil ? cloud : "embedded"
            report(output, split: split)
            if json { try Console.printJSON(output) }
        } catch {
            await embedded?.shutdown()
            throw error
        }
    }

    /// Ends a human run with one summary line: who decided the tokens, traffic and time.
    private func report(_ output: GenerateOutput, split: Int) {
        guard !json else { return }
        Console.write("\n")
        let edge = output.sources.filter(\.isEdgeDecision).count
        let degraded = output.sources.filter(\.isDegraded).count
        let cloudTokens = output.sources.filter { $0 == .cloud }.count
        var line = String(format: "[%d prompt tokens, %d generated", output.prompt_tokens, output.tokens.count)
        if mode != .local {
            line += ": \(edge) by the edge, \(cloudTokens) by the cloud" + (degraded > 0 ? ", \(degraded) degraded" : "")
            line += String(format: "; %.1f KB up, %.1f KB down, %d round trips", Double(output.bytes_up) / 1000,
                           Double(output.bytes_down) / 1000, output.round_trips)
        }
        if let s = output.speculation, s.rounds > 0 {
            line += String(format: "; %.2f drafts accepted per VERIFY", Double(s.accepted) / Double(s.rounds))
        }
        line += String(format: "; %.2f s, %.1f tok/s decode]", output.timings.total,
                       Double(output.tokens.count) / max(output.timings.decode, 1e-9))
        Console.status(line)
        if (mode == .collab || mode == .spec) && output.calibration == nil && edge == 0 {
            Console.status("note: no exit calibration for this model and split, so the edge decides no tokens; fit one with `collm calibrate --split \(split)`")
        }
    }

    private func generate(gguf: GGUFFile, tokenizer: Tokenizer, split: Int, prompt ids: [Int], path: String, cloud: String?,
                          wire: String) async throws -> GenerateOutput {
        let json = self.json
        let stream: (String) -> Void = { piece in if !json { Console.write(piece) } }
        let connector = try cloud.map { try GRPCConnector(address: $0, token: CloudClientEnvironment.token, trustRoots: trustRoots) }
        switch mode {
        case .local:
            let setup = try makeSetup(gguf: gguf, tokenizer: tokenizer, split: split)
            let result = try TextGenerator(model: setup.model, tokenizer: tokenizer)
                .generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, contextCapacity: ctx, onText: stream)
            return GenerateOutput(result: result, modelPath: path)
        case .edge, .collab, .spec:
            return try await runEdge(setup: try makeSetup(gguf: gguf, tokenizer: tokenizer, split: split), prompt: ids, path: path,
                                     connector: connector, wire: wire)
        case .cloud:
            let result = try await CloudOnlyClient(tokenizer: tokenizer)
                .generate(prompt: ids, maxTokens: maxTokens, sampling: sampling,
                          link: GRPCCloudGeneration(connector: connector!), onText: stream)
            return GenerateOutput(result: result, modelPath: path)
        case .naive:
            let setup = try makeSetup(gguf: gguf, tokenizer: tokenizer, split: split)
            let link = try GRPCNaiveLink(connector: connector!, fingerprint: setup.fingerprint, splitLayer: split)
            let result = try await NaiveRunner(model: setup.model, tokenizer: tokenizer, wire: WireFormat(rawValue: wire)!)
                .generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, link: link, onText: stream)
            await link.close()
            return GenerateOutput(result: result, modelPath: path)
        }
    }

    private func makeSetup(gguf: GGUFFile, tokenizer: Tokenizer, split: Int) throws -> EdgeSetup {
        try EdgeSetup(gguf: gguf, tokenizer: tokenizer, mode: mode, split: split, exitLayers: try exitLayers(),
                      threshold: threshold, calibration: calibration, activations: modelOptions.activations,
                      threads: modelOptions.threadCount)
    }

    private func runEdge(setup: EdgeSetup, prompt: [Int], path: String, connector: GRPCConnector?,
                         wire: String) async throws -> GenerateOutput {
        var options = setup.options
        if let latencyAware {
            let (low, high) = try ListArgument.bounds(latencyAware, option: "--latency-aware")
            options.latencyAware = LatencyAwareThresholds(minimum: low, maximum: high, referenceSeconds: referenceRTTms / 1000)
        }
        options.wire = WireFormat(rawValue: wire)!
        options.sampling = sampling
        options.maxTokens = maxTokens
        if let ctx { options.maxPositions = ctx }
        cloudLoss.apply(to: &options)
        // Degradation is announced on stderr when it begins and ends, not only in the token sources.
        let outages = CloudOutageMonitor { Console.status($0.message) }
        options.outageMonitor = outages
        // On a terminal, tokens the edge decided are shown in colour (degraded ones in yellow).
        let json = self.json
        let colour = !json && isatty(1) != 0
        let onPiece = { (piece: String, source: TokenSource) in
            guard !json else { return }
            switch source {
            case .edge where colour: Console.write("\u{1B}[32m" + piece + "\u{1B}[0m")
            case .degraded where colour: Console.write("\u{1B}[33m" + piece + "\u{1B}[0m")
            default: Console.write(piece)
            }
        }
        let run = try await setup.makeRunner(connector: connector, options: options).generate(prompt: prompt, onPiece: onPiece)
        if let since = outages.degradedSince {
            Console.status("collm: the generation ended with the cloud still unreachable (degraded since \(CloudOutageMonitor.clock(since)))")
        }
        var out = GenerateOutput(result: run.result, modelPath: path)
        out.calibration = setup.calibrationPath
        out.exits = ExitReport(run, heads: setup.heads)
        if mode == .spec {
            out.speculation = SpeculationReport(run.speculation)
        }
        out.token_seconds = run.result.tokenSeconds
        if mode.needsCloud {
            out.failover = FailoverReport(policy: cloudLoss.onCloudLoss, run.failover)
        }
        return out
    }
}
