import ArgumentParser
import CollabCore
import CollabTransport
import Edge
import Foundation
import LLM

/// Execution modes of DESIGN.md section 8.
enum GenerationMode: String, ExpressibleByArgument, CaseIterable {
    case local, edge, collab, cloud, naive, spec
}

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt.",
        discussion: """
            Modes: local (full model in this process), edge (standalone early exit), collab (CE-CoLLM), \
            cloud (whole model in the cloud server), naive (split without context manager), spec (lossless \
            speculative). Streams text to stdout unless --json.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "The prompt text.") var prompt: String
    @Flag(name: .long, help: "Wrap the prompt as a user turn in the model's chat template (ChatML).") var chat = false
    @Option(name: .long, help: "System message for --chat (default: the model's default).") var system: String?
    @Option(name: .customLong("max-tokens"), help: "Maximum tokens to generate.") var maxTokens = 128
    @Option(name: .long, help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: off).") var topK = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1: off).") var topP: Float = 1
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p times the top probability (0: off).") var minP: Float = 0
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1: off).") var repeatPenalty: Float = 1
    @Option(name: .long, help: "Random seed for sampling.") var seed: UInt64?
    @Option(name: .long, help: "Mode: \(GenerationMode.allCases.map(\.rawValue).joined(separator: "|")).") var mode: GenerationMode = .local
    @Option(name: .long, help: "Cloud server HOST:PORT (collab, cloud, naive, spec).") var cloud: String?
    @Option(name: .long, help: "Split layer s: the edge runs layers [0, s).") var split: Int?
    @Option(name: .long, help: "Exit layers, comma separated.") var exits: String?
    @Option(name: .long, help: "Exit confidence threshold.") var threshold: Float?
    @Option(name: .long, help: "Hidden-state wire format: f32|f16|q8.") var wire: String?
    @Option(name: .long, help: "Context length (KV cache positions) to allow.") var ctx: Int?
    @Flag(name: .long, help: "Print one JSON object instead of streaming text.") var json = false

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0") }
        if let ctx, ctx < 1 { throw ValidationError("--ctx must be positive") }
        try sampling.validate()
        if mode == .spec {
            throw ValidationError("mode 'spec' is not available yet in this build; use local, edge, collab, cloud or naive")
        }
        if (mode == .collab || mode == .cloud || mode == .naive) && cloud == nil {
            throw ValidationError("--mode \(mode.rawValue) needs --cloud HOST:PORT")
        }
        if let wire, WireFormat(rawValue: wire) == nil { throw ValidationError("--wire must be f32, f16 or q8") }
        if let threshold, !(threshold >= 0) { throw ValidationError("--threshold must be >= 0") }
        _ = try exitLayers()
    }

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
        return try exits.split(separator: ",").map {
            guard let layer = Int($0.trimmingCharacters(in: .whitespaces)), layer > 0 else {
                throw ValidationError("--exits takes comma-separated layer numbers (got \(exits))")
            }
            return layer
        }
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
            text = ChatTemplate.chatML.render(messages)
        } else {
            text = prompt
        }
        let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: chat)
        let stream: (String) -> Void = { piece in if !json { Console.write(piece) } }
        var output: GenerateOutput
        switch mode {
        case .local:
            let model = try LlamaModel(file: gguf, pool: ThreadPool(threadCount: modelOptions.threadCount))
            let result = try TextGenerator(model: model, tokenizer: tokenizer)
                .generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, contextCapacity: ctx, onText: stream)
            output = GenerateOutput(result: result, modelPath: path)
        case .edge, .collab:
            output = try await runEdge(gguf: gguf, tokenizer: tokenizer, prompt: ids, path: path, onText: stream)
        case .cloud:
            let json = self.json
            let r = try await CloudModeClient(address: cloud!, token: ProcessInfo.processInfo.environment["COLLM_TOKEN"])
                .generate(prompt: ids, maxTokens: maxTokens, sampling: sampling,
                          stopTokens: TextGenerator.stopTokens(of: tokenizer), tokenizer: tokenizer) { piece in
                    if !json { Console.write(piece) }
                }
            output = GenerateOutput(text: r.text, tokens: r.tokens, promptTokens: ids.count, modelPath: path,
                                    sources: Array(repeating: "cloud", count: r.tokens.count), logprobs: r.logprobs,
                                    stopReason: r.stoppedAtEOS ? "eos" : "length")
            output.timings = .init(prefill: r.firstTokenSeconds, decode: r.totalSeconds - r.firstTokenSeconds,
                                   total: r.totalSeconds, edge: 0, cloud: r.cloudSeconds,
                                   network: max(0, r.totalSeconds - r.cloudSeconds))
            output.bytes_up = r.bytesUp
            output.bytes_down = r.bytesDown
            output.round_trips = 1
        case .naive:
            let s = split ?? 15
            let config = try ModelConfig(gguf: gguf)
            guard s > 0, s < config.layerCount else { throw ValidationError("--split must be in 1..<\(config.layerCount)") }
            let model = try LlamaModel(file: gguf, layers: 0..<s, pool: ThreadPool(threadCount: modelOptions.threadCount))
            let json = self.json
            let r = try await NaiveRunner(model: model, tokenizer: tokenizer, address: cloud!,
                                          token: ProcessInfo.processInfo.environment["COLLM_TOKEN"],
                                          fingerprint: gguf.fingerprint(), wire: WireFormat(rawValue: wire ?? "f16")!)
                .generate(prompt: ids, maxTokens: maxTokens, sampling: sampling) { piece in
                    if !json { Console.write(piece) }
                }
            output = GenerateOutput(text: r.text, tokens: r.tokens, promptTokens: ids.count, modelPath: path,
                                    sources: Array(repeating: "cloud", count: r.tokens.count), logprobs: r.logprobs,
                                    stopReason: r.stoppedAtEOS ? "eos" : "length")
            output.timings = .init(prefill: r.firstTokenSeconds, decode: r.totalSeconds - r.firstTokenSeconds,
                                   total: r.totalSeconds, edge: r.edgeSeconds, cloud: r.cloudSeconds, network: r.networkSeconds)
            output.bytes_up = r.bytesUp
            output.bytes_down = r.bytesDown
            output.round_trips = r.roundTrips
        case .spec:
            throw ValidationError("mode spec is not available yet")
        }
        output.mode = mode.rawValue
        if json {
            try Console.printJSON(output)
        } else {
            Console.write("\n")
            Console.status(String(format: "[%d prompt tokens, %d generated, %.2f s total, %.1f tok/s decode]",
                                  output.prompt_tokens, output.tokens.count, output.timings.total,
                                  Double(output.tokens.count) / max(output.timings.decode, 1e-9)))
        }
    }

    private func runEdge(gguf: GGUFFile, tokenizer: Tokenizer, prompt: [Int], path: String,
                         onText: (String) -> Void) async throws -> GenerateOutput {
        let config = try ModelConfig(gguf: gguf)
        let s = split ?? 15
        guard s > 0, s < config.layerCount else { throw ValidationError("--split must be in 1..<\(config.layerCount)") }
        let layers = try exitLayers()
        if let bad = layers.first(where: { $0 >= s }) { throw ValidationError("exit layer \(bad) must be below the split \(s)") }
        let model = try LlamaModel(file: gguf, layers: 0..<s, head: true, pool: ThreadPool(threadCount: modelOptions.threadCount))
        var options = EdgeOptions(mode: mode == .edge ? .standalone : .collaborative,
                                  exits: layers.map { ExitHead(layer: $0, threshold: threshold ?? 0.9) })
        options.wire = WireFormat(rawValue: wire ?? "f16")!
        options.sampling = sampling
        options.maxTokens = maxTokens
        if let ctx { options.maxPositions = ctx }
        let connector = try mode == .collab
            ? GRPCConnector(address: cloud!, token: ProcessInfo.processInfo.environment["COLLM_TOKEN"]) : nil
        let runner = try EdgeRunner(model: model, tokenizer: tokenizer, fingerprint: gguf.fingerprint(),
                                    options: options, connector: connector)
        let r = try await runner.generate(prompt: prompt, onText: onText)
        var out = GenerateOutput(text: r.text, tokens: r.tokens, promptTokens: r.promptTokens, modelPath: path,
                                 sources: r.sources, logprobs: r.logprobs, stopReason: r.stopReason.rawValue)
        out.timings = .init(prefill: r.prefillSeconds, decode: r.decodeSeconds, total: r.prefillSeconds + r.decodeSeconds,
                            edge: r.edgeSeconds, cloud: r.cloudSeconds, network: r.networkSeconds)
        out.bytes_up = r.traffic.bytesUp
        out.bytes_down = r.traffic.bytesDown
        out.round_trips = r.traffic.roundTrips
        out.token_seconds = r.tokenSeconds
        return out
    }
}

/// The `generate --json` object (DESIGN.md section 9).
struct GenerateOutput: Codable {
    struct Timings: Codable {
        var prefill, decode, total, edge, cloud, network: Double
    }

    var text: String
    var tokens: [Int]
    var prompt_tokens: Int
    var model_path: String
    var mode: String
    var sources: [String]
    var logprobs: [Float]
    var stop_reason: String
    var timings: Timings
    var bytes_up = 0
    var bytes_down = 0
    var round_trips = 0
    /// Seconds from the start until each token was decided (edge and collab modes; absent otherwise).
    var token_seconds: [Double]?

    init(text: String, tokens: [Int], promptTokens: Int, modelPath: String, sources: [String], logprobs: [Float],
         stopReason: String) {
        self.text = text
        self.tokens = tokens
        prompt_tokens = promptTokens
        model_path = modelPath
        mode = ""
        self.sources = sources
        self.logprobs = logprobs
        stop_reason = stopReason
        timings = Timings(prefill: 0, decode: 0, total: 0, edge: 0, cloud: 0, network: 0)
    }

    init(result: GenerationResult, modelPath: String) {
        self.init(text: result.text, tokens: result.tokens, promptTokens: result.promptTokens, modelPath: modelPath,
                  sources: Array(repeating: "local", count: result.tokens.count), logprobs: result.logprobs,
                  stopReason: result.stopReason.rawValue)
        timings = Timings(prefill: result.prefillSeconds, decode: result.decodeSeconds, total: result.totalSeconds,
                          edge: 0, cloud: 0, network: 0)
    }
}
