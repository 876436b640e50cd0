import ArgumentParser
import Bench
import CollabCore
import Exits
import Foundation
import LLM

/// What an exit check costs next to a transformer layer, per decoded token: the full-vocabulary
/// head, and for every exit of the calibration its block and its screened decision (shortlist first, full head only when a
/// shortlisted token could pass). Medians over many single-token calls after a warm-up on one synthetic state, then
/// over real decoding, where the edge's layers run between checks and how often the screen lets a state through to
/// the full head depends on the state.
struct ExitBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exits", abstract: "Measure an exit check's cost against one layer's (use a release build).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Exit calibration file (default: the cached one for --split).") var calibration: String?
    @Option(name: .long, help: "Timed calls per measurement.") var iterations = 200
    @Option(name: .long, help: "Context positions before the measured token.") var context = 64
    @Option(name: .long, help: "How layer blocks run: \"stored\" (packed to match the file's weights: Q5_0 for q5, else Q8_0, as generate runs them), packed into an engine format (q8_0, q5_0, q5_1, q4_1, q4_0, f16, f32) or \"reference\" (the f32 training pass).")
    var layerBlock = "stored"
    @Option(name: .long, help: ArgumentHelp(
        "Held-out instruction prompts whose greedy answers the exits decide, token by token (0: the synthetic state only).",
        discussion: "The built-in bench instructions that the calibration never saw; each answer is the full model's."))
    var prompts = 8
    @Option(name: .customLong("decode-tokens"), help: "Tokens per answer for the real-decoding measurement.") var decodeTokens = 48
    @OptionGroup var chatTemplate: ChatTemplateOptions
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    /// How `--layer-block` runs layer blocks; nil: packed to match the stored weights (or not a valid choice).
    var layerExecution: ExitLayer.Execution? {
        if layerBlock == "reference" { return .trainingPass }
        return [GGMLType.q8_0, .q4_1, .q4_0, .q5_0, .q5_1, .f16, .f32]
            .first { $0.description.lowercased() == layerBlock.lowercased() }.map { .packed($0) }
    }

    func validate() throws {
        if iterations < 5 || context < 1 { throw ValidationError("--iterations must be >= 5 and --context >= 1") }
        if prompts < 0 || decodeTokens < 1 { throw ValidationError("--prompts must be >= 0 and --decode-tokens >= 1") }
        if layerBlock != "stored" && layerExecution == nil {
            throw ValidationError("--layer-block: \(layerBlock) is not stored, q8_0, q5_0, q5_1, q4_1, q4_0, f16, f32 or reference")
        }
    }

    func run() throws {
        let (gguf, tokenizer) = try modelOptions.openModelFile()
        let fingerprint = gguf.fingerprint()
        let split = try SplitDefault.resolve(splitOption, gguf: gguf)
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, layers: 0..<split, head: true, activations: modelOptions.activations, pool: pool)
        guard let (calibrated, path) = try CalibrationStore.load(calibration, fingerprint: fingerprint, split: split),
              !calibrated.exits.isEmpty else {
            throw CLIError("no calibration for split \(split): run `collm calibrate --split \(split)` first")
        }
        let heads = try calibrated.heads(for: model, layerExecution: layerExecution)
        let cache = model.makeCache(capacity: context + 2)
        var prefix = try model.embed((0..<context).map { 100 + $0 })
        try model.forward(&prefix, cache: cache)
        let row = prefix.rows(context - 1..<context)

        func time(_ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<5 { try body() }
            var samples: [Double] = []
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                samples.append(milliseconds(since: start))
            }
            return median(samples)
        }
        // A layer's cost in a real decode step: all edge layers for one token, divided by their count
        // (one layer alone would stay in the CPU cache and look faster than it is).
        let layer = try time {
            cache.truncate(to: context)
            var h = row
            try model.forward(&h, cache: cache)
        } / Double(split)
        let head = try time { _ = try model.logits(row) }
        // One of the edge's layers, in bytes of packed weights.
        let layerBytes = Double(model.layerWeightBytes) / Double(split)
        var exits: [ExitBenchOutput.Exit] = []
        for (exit, screened) in zip(calibrated.exits, heads) {
            var unscreened = screened
            unscreened.screen = nil
            // A layer block attends over the context: it holds the prefix, and each timed call re-runs the last position.
            try screened.observe(prefix, at: 0)
            let observe = { try screened.observe(row, at: context - 1) }
            let adapter = try time { try observe(); _ = try screened.adapted(row, pool: pool) }
            let full = try time { try observe(); _ = try unscreened.decide(row, model: model) }
            let cheap = try time { try observe(); _ = try screened.decide(row, model: model) }
            exits.append(.init(layer: exit.layer, block: exit.block.label, adapter_ms: adapter, decision_full_ms: full,
                               decision_screened_ms: cheap, adapter_layers: adapter / layer, decision_screened_layers: cheap / layer,
                               check_weight_bytes: screened.checkWeightBytes,
                               check_weight_layers: Double(screened.checkWeightBytes) / layerBytes))
        }
        if prompts > 0 {
            let answers = try heldOutAnswers(gguf: gguf, tokenizer: tokenizer, pool: pool)
            for index in exits.indices {
                exits[index].decoding = try decodingCost(of: heads[index], decidingWith: model, on: answers, gguf: gguf, pool: pool)
                if exits[index].decoding == nil { Console.status("bench exits: the held-out answers were empty; no real-decoding figures") }
            }
        }
        let out = ExitBenchOutput(calibration: path, threads: pool.threadCount, context: context, layer_ms: layer, head_ms: head,
                                  shortlist: calibrated.shortlist.count,
                                  shortlist_rows: heads.compactMap(\.screen).first?.rowType.lowercasedName,
                                  exit_rule: calibrated.rule.rawValue,
                                  vocabulary: model.config.vocabularySize, exits: exits)
        if json {
            try Console.printJSON(out)
        } else {
            Console.write(String(format: "one layer %.3f ms | full head %.3f ms (%.1f layers) | shortlist %d of %d tokens%@ | exits decide over %@\n",
                                 layer, head, head / layer, out.shortlist, out.vocabulary,
                                 out.shortlist_rows.map { " (\($0) rows)" } ?? "",
                                 calibrated.rule == .full ? "the whole vocabulary" : "the shortlist alone"))
            for e in exits {
                Console.write(String(format: """
                    exit %d (%@), weights read per check %.2f MB (%.2f layers' worth) | one state repeated (the exit's \
                    weights stay in the CPU cache): block %.3f ms (%.2f layers) | decision: full %.3f ms (%.1f layers), \
                    screened %.3f ms (%.2f layers)\n
                    """, e.layer, e.block, Double(e.check_weight_bytes) / 1e6, e.check_weight_layers, e.adapter_ms,
                    e.adapter_layers, e.decision_full_ms, e.decision_full_ms / layer, e.decision_screened_ms,
                    e.decision_screened_layers))
                if let d = e.decoding {
                    Console.write(String(format: """
                          in decoding (%d held-out answer tokens, the layers below run between checks as in generate; \
                        one layer %.3f ms): %.2f layers per token sent to the cloud (%.1f%% of tokens screened out, %.1f%% \
                        through to the full head), %.2f per token decided (%.1f%%), %.2f over all tokens\n
                        """, d.tokens, d.layer_ms, d.deferred_layers_per_token, 100 * d.screened_share,
                        100 * d.full_head_rejected_share, d.confident_layers_per_token, 100 * d.confident_share,
                        d.layers_per_token))
                }
            }
        }
    }
}

struct ExitBenchOutput: Encodable {
    var calibration: String
    var threads: Int
    var context: Int
    var layer_ms: Double
    var head_ms: Double
    var shortlist: Int
    /// The format of the shortlist's head rows (`calibrate --shortlist-rows`); absent without a screen.
    var shortlist_rows: String?
    /// `ExitRule`: under "shortlist" a decided token never reads the full head.
    var exit_rule: String
    var vocabulary: Int
    /// Every exit of the calibration, in depth order.
    var exits: [Exit]

    struct Exit: Encodable {
        var layer: Int
        var block: String
        var adapter_ms: Double
        var decision_full_ms: Double
        var decision_screened_ms: Double
        var adapter_layers: Double
        var decision_screened_layers: Double
        /// Weights a check reads (block and shortlist rows), and that against one of the edge's layers: in
        /// decoding they are cold, so this predicts the real-decoding cost.
        var check_weight_bytes: Int
        var check_weight_layers: Double
        var decoding: Decoding?
    }

    /// One exit over real answers: every answer token's block update and decision, as generate runs them.
    struct Decoding: Encodable {
        var prompts: Int
        var tokens: Int
        /// Median time of one of the layers below the exit per decoded token: the unit of the costs below.
        var layer_ms: Double
        /// Cost of a token's check, in layers (each outcome's median, weighted by its share): over all tokens, over
        /// those the exit leaves to the cloud, and over those it decides (these always need the full head).
        var layers_per_token: Double
        var deferred_layers_per_token: Double
        var confident_layers_per_token: Double
        /// Shares of tokens: rejected by the shortlist screen, let through to the full head and rejected there, decided.
        var screened_share: Double
        var full_head_rejected_share: Double
        var confident_share: Double
    }
}

extension ExitBench {
    /// Held-out prompts (chat-wrapped) and the full model's greedy answers to them.
    func heldOutAnswers(gguf: GGUFFile, tokenizer: Tokenizer, pool: ThreadPool) throws -> [(prompt: [Int], answer: [Int])] {
        let format = try chatTemplate.chatFormat(gguf: gguf, tokenizer: tokenizer)
        let instructions = BenchPrompt.leavingOutCalibration(BenchPrompt.builtIn).filter { $0.kind != "qa" }.prefix(prompts)
        let generator = TextGenerator(model: try LlamaModel(file: gguf, activations: modelOptions.activations, pool: pool),
                                      tokenizer: tokenizer)
        return try instructions.enumerated().map { index, instruction in
            Console.status("bench exits: full model answering held-out prompt \(index + 1)/\(instructions.count)")
            let ids = tokenizer.encode(format.render(user: instruction.text), addSpecial: true, parseSpecial: true)
            return (ids, try generator.generate(prompt: ids, maxTokens: decodeTokens, sampling: .greedy).tokens)
        }
    }

    /// `head` deciding every answer position as generate does: the layers below its exit take one token (timed: the
    /// per-layer unit), then its block takes the row and decides through `deciding`'s head (timed), so the block's
    /// weights and the shortlist's head rows are as cold in the cache as they are between real tokens.
    func decodingCost(of head: ExitHead, decidingWith deciding: LlamaModel, on answers: [(prompt: [Int], answer: [Int])],
                      gguf: GGUFFile, pool: ThreadPool) throws -> ExitBenchOutput.Decoding? {
        let layer = head.layer
        let model = try LlamaModel(file: gguf, layers: 0..<layer, activations: modelOptions.activations, pool: pool)
        var (screened, rejected, confident, layerTimes) = ([Double](), [Double](), [Double](), [Double]())
        for (prompt, answer) in answers where prompt.count >= 2 && !answer.isEmpty {
            let ids = prompt + answer
            let cache = model.makeCache(capacity: ids.count)
            // The prompt as generate's prefill: the block takes it in before the first timed token.
            var states = try model.embed(Array(prompt.dropLast()))
            try model.forward(&states, cache: cache)
            try head.observe(states, at: 0)
            _ = try head.adapted(states, pool: pool)
            // The position before each answer token decides it.
            for position in prompt.count - 1..<ids.count - 1 {
                var row = try model.embed([ids[position]])
                let start = DispatchTime.now().uptimeNanoseconds
                try model.forward(&row, cache: cache)
                layerTimes.append(milliseconds(since: start) / Double(layer))
                let check = DispatchTime.now().uptimeNanoseconds
                try head.observe(row, at: position)
                let decision = try head.decide(row, model: deciding)
                let ms = milliseconds(since: check)
                switch decision {
                case .confident: confident.append(ms)
                case .notConfident(screened: true): screened.append(ms)
                case .notConfident(screened: false): rejected.append(ms)
                }
            }
        }
        guard !layerTimes.isEmpty else { return nil }
        let layerMs = median(layerTimes)
        // Each outcome's median (a preempted call would swamp a mean), weighted by how often it happened.
        let tokens = screened.count + rejected.count + confident.count
        func layers(_ groups: [[Double]]) -> Double {
            let count = groups.map(\.count).reduce(0, +)
            guard count > 0 else { return 0 }
            return groups.filter { !$0.isEmpty }.map { median($0) * Double($0.count) }.reduce(0, +) / Double(count) / layerMs
        }
        return .init(prompts: answers.count, tokens: tokens, layer_ms: layerMs, layers_per_token: layers([screened, rejected, confident]),
                     deferred_layers_per_token: layers([screened, rejected]), confident_layers_per_token: layers([confident]),
                     screened_share: Double(screened.count) / Double(tokens),
                     full_head_rejected_share: Double(rejected.count) / Double(tokens),
                     confident_share: Double(confident.count) / Double(tokens))
    }
}

/// Milliseconds since `start` (a `DispatchTime` uptime in nanoseconds).
private func milliseconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }
