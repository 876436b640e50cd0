import ArgumentParser
import Foundation
import LLM

/// Execution modes of DESIGN.md section 8.
enum GenerationMode: String, ExpressibleByArgument, CaseIterable {
    case local, edge, collab, cloud, naive, spec
}

struct GenerateCommand: ParsableCommand {
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
        if mode != .local {
            throw ValidationError("mode '\(mode.rawValue)' is not available yet in this build; use --mode local")
        }
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

    func run() throws {
        let path = try modelOptions.resolvedModelPath()
        let gguf = try GGUFFile(path: path)
        let tokenizer = try Tokenizer(gguf: gguf)
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, pool: pool)
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
        let generator = TextGenerator(model: model, tokenizer: tokenizer)
        let result = try generator.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling,
                                            contextCapacity: ctx) { piece in
            if !json { Console.write(piece) }
        }
        if json {
            try Console.printJSON(GenerateOutput(result: result, mode: mode, modelPath: path, layers: model.config.layerCount))
        } else {
            Console.write("\n")
            Console.status(String(format: "[%d prompt tokens, %d generated, prefill %.1f tok/s, decode %.1f tok/s, stop: ",
                                  result.promptTokens, result.tokens.count,
                                  Double(result.promptTokens) / max(result.prefillSeconds, 1e-9),
                                  Double(result.tokens.count) / max(result.decodeSeconds, 1e-9))
                           + result.stopReason.rawValue + "]")
        }
    }
}

/// The `generate --json` object (DESIGN.md section 9).
struct GenerateOutput: Encodable {
    struct Timings: Encodable {
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

    init(result: GenerationResult, mode: GenerationMode, modelPath: String, layers: Int) {
        text = result.text
        tokens = result.tokens
        prompt_tokens = result.promptTokens
        model_path = modelPath
        self.mode = mode.rawValue
        sources = Array(repeating: "local", count: result.tokens.count)
        logprobs = result.logprobs
        stop_reason = result.stopReason.rawValue
        timings = Timings(prefill: result.prefillSeconds, decode: result.decodeSeconds, total: result.totalSeconds,
                          edge: 0, cloud: 0, network: 0)
    }
}
