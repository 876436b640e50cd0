import ArgumentParser
import Bench
import Calibration
import CollabCore
import ExitTraining
import Exits
import Foundation
import LLM

extension WeightPrecision: ExpressibleByArgument {}
extension ExitRule: ExpressibleByArgument {}

/// `calibrate --lr-schedule`.
enum LearningRateSchedule: String, ExpressibleByArgument, CaseIterable {
    case constant, cosine
}

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit early-exit heads for a model and choose their thresholds.",
        discussion: """
            Runs the full model greedily over the built-in prompt set (\(CalibrationPromptSet.instructions.count) \
            instructions, \(CalibrationPromptSet.questions.count) questions, \(CalibrationPromptSet.openings.count) \
            text openings), records the hidden states at the exit layers, fits a ridge adapter per exit on 60% of the \
            prompts, picks each threshold on 20% for the target precision (agreement with the full model's top-1), \
            and reports curves on the last 20%. The file goes to the cache by default, where generate finds it.
            With --report, prints a calibration file's held-out curves instead.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var chatTemplate: ChatTemplateOptions
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Exit layers (comma separated, at most s; s itself is the exit at the split). Default: s/2,s.") var exits: String?
    @Option(name: .long, help: ArgumentHelp(
        "Exit block: ridge (affine adapter), mlp (residual MLP distilled from the full model, started from the ridge adapter) or layer (a copy of one of the model's layers with its own KV cache, distilled over whole sequences).",
        discussion: "Per exit: LAYER:KIND items, e.g. --block mlp,15:layer (exit 15 a layer block, the others mlp)."))
    var block = "ridge"
    @Option(name: .customLong("mlp-width"), help: "Hidden width of the MLP block.") var mlpWidth = 512
    @Option(name: .customLong("layer-source"), help: "The model layer a layer block copies; the last one with --layer-depth (default: the last layer).") var layerSource: Int?
    @Option(name: .long, help: ArgumentHelp(
        "Layers in a layer block.",
        discussion: "Copies of the model's layers ending at --layer-source, trained together; each costs about one model layer per token."))
    var layerDepth = 1
    @Option(name: .long, help: "Most training epochs for trained blocks (early stopping on the selection prompts).") var epochs = 8
    @Option(name: .customLong("learning-rate"), help: "Adam learning rate for trained blocks (default: 3e-3 for mlp, 1e-3 for layer).") var learningRate: Float?
    @Option(name: .customLong("lr-schedule"), help: ArgumentHelp(
        "Learning-rate schedule of trained blocks: constant, or cosine (decays per epoch from the rate to about a tenth at the last epoch).",
        discussion: "A decayed rate settles the block in fewer epochs; the shipped calibration used constant."))
    var lrSchedule = LearningRateSchedule.constant
    @Option(name: .customLong("kl-weight"), help: "Weight of the KL divergence to the full model's distribution in trained blocks' loss.")
    var klWeight: Float = 1
    @Option(name: .customLong("top1-weight"), help: ArgumentHelp(
        "Weight of the cross-entropy on the full model's top-1 token in trained blocks' loss.",
        discussion: "KL teaches the exit the full model's confidence; the top-1 term teaches it how likely its own top-1 is the full model's, which is what an exit threshold asks."))
    var top1Weight: Float = 0
    @Option(name: .long, help: "Target precision for thresholds (agreement of exited tokens with the full model).") var target = 0.9
    @Option(name: .long, help: "Tokens generated per prompt.") var maxTokens = 48
    @Option(name: .long, help: "Use only the first N prompts of each kind (default: all).") var prompts: Int?
    @Option(name: .long, help: "Answers per prompt: the first greedy, the rest sampled at temperature 0.8 (default: 1 for ridge, 4 for mlp).") var samples: Int?
    @Option(name: .customLong("extra-prompts"), help: ArgumentHelp(
        "Chat requests written from templates over a topic list, one greedy answer each, added to the fitting data only (0...\(TrainingPrompts.requestCount)).",
        discussion: "Thresholds and the report still come from the built-in prompts' held-out parts."))
    var extraPrompts = 0
    @Option(name: .long, help: "A text file whose passages (about 40 words from a sentence start) the model continues (one greedy answer each), for the fitting data only.")
    var passages: String?
    @Option(name: .customLong("passage-count"), help: "Passages taken from --passages, spread over the file.") var passageCount = 500
    @Option(name: .long, help: "Ridge strength (relative to the states' mean variance).") var ridge = 1e-3
    @Option(name: .long, help: "Seed of the prompt split.") var seed: UInt64 = 42
    @Option(name: .long, help: "Output file (default: the cache, used by generate by default).") var output: String?
    @Option(name: .long, help: ArgumentHelp(
        "Precision of trained blocks' weights in the file: f32, f16 (half the size), q8 (int8 blocks of 32 with f16 scales, about a quarter), q5 (ggml Q5_0 blocks, about a sixth) or q4 (ggml Q4_0, about a seventh); layer blocks' norms stay f32 (default: f32; with --blocks-from, the file's).",
        discussion: "Blocks are rounded to it before thresholds are picked, so the file's curves hold for the stored weights. With --blocks-from, a precision other than the file's rounds its blocks again."))
    var weights: WeightPrecision?
    @Option(name: .long, help: ArgumentHelp(
        "The exit screen's shortlist keeps the full model's tokens chosen at least N times in the data, besides every token an exit was confident about.",
        discussion: "1 keeps every token, and the screen changes no decision on the data; a larger N makes each exit check cheaper (the shortlist's head rows are evaluated for every token) at the price of the rare tokens' exits."))
    var shortlistMinCount = 1
    @Option(name: .customLong("exit-rule"), help: ArgumentHelp(
        "What an exit's confidence is the top probability over: full (the whole vocabulary; the shortlist only screens) or shortlist (the shortlist alone).",
        discussion: "Under shortlist a decided token costs what a rejected one does (the shortlist's head rows), instead of the full head; the edge then only decides shortlisted tokens. Thresholds are picked for the rule, and the file records it."))
    var exitRule = ExitRule.full
    @Option(name: .customLong("shortlist-rows"), help: ArgumentHelp(
        "Format of the shortlist's head rows, which every exit check reads: head (the head's own) or a ggml format (q8_0, q5_0, q4_0), re-quantized from the head's values.",
        discussion: "Fewer bits a row make each check cheaper; thresholds under --exit-rule shortlist are picked on logits from these rows, and the file records the format."))
    var shortlistRows = "head"
    @Option(name: .customLong("blocks-from"), help: ArgumentHelp(
        "Take the trained blocks of this calibration file (same model and split) instead of training; thresholds and curves are picked again.",
        discussion: "With the same data and seed the held-out figures are the file's own; with another --target or --exit-rule, new thresholds for the same blocks in minutes instead of an hour. Exits default to the file's."))
    var blocksFrom: String?
    @Flag(name: .long, help: "Regenerate the cached training data even if it matches.") var fresh = false
    @Flag(name: .long, help: "Print a calibration file's report instead of calibrating.") var report = false
    @Option(name: .long, help: "Calibration file for --report (default: the cached one for --split).") var calibration: String?
    @Option(name: .long, help: "Also write the report's plot to this SVG file.") var svg: String?
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    func validate() throws {
        _ = try blockChoice()
        guard mlpWidth >= 8, mlpWidth <= 8192, epochs >= 1, epochs <= 1000, (learningRate ?? 1) > 0 else {
            throw ValidationError("--mlp-width must be 8...8192, --epochs 1...1000 and --learning-rate positive")
        }
        guard klWeight >= 0, top1Weight >= 0, klWeight + top1Weight > 0, klWeight.isFinite, top1Weight.isFinite else {
            throw ValidationError("--kl-weight and --top1-weight must be non-negative, and not both 0")
        }
        guard target > 0, target <= 1 else { throw ValidationError("--target must be in (0, 1]") }
        guard maxTokens >= 1, maxTokens <= 1024 else { throw ValidationError("--max-tokens must be in 1...1024") }
        if let prompts, prompts < 2 { throw ValidationError("--prompts must be at least 2") }
        if let samples, samples < 1 || samples > 64 { throw ValidationError("--samples must be in 1...64") }
        guard ridge > 0 else { throw ValidationError("--ridge must be positive") }
        guard shortlistMinCount >= 1 else { throw ValidationError("--shortlist-min-count must be at least 1") }
        if try shortlistRowType() != nil, exitRule != .shortlist {
            throw ValidationError("--shortlist-rows needs --exit-rule shortlist: under the full rule the screen must bound the head's own logits")
        }
        if let exits { _ = try ListArgument.layers(exits, option: "--exits") }
        let templated = TrainingPrompts.requestCount
        guard extraPrompts >= 0, extraPrompts <= templated else { throw ValidationError("--extra-prompts must be in 0...\(templated)") }
        guard passageCount >= 1, passageCount <= 100_000 else { throw ValidationError("--passage-count must be in 1...100000") }
    }

    func run() throws {
        let (gguf, tokenizer) = try modelOptions.openModelFile()
        let config = try ModelConfig(gguf: gguf)
        let split = try SplitDefault.resolve(splitOption, layerCount: config.layerCount)
        let fingerprint = gguf.fingerprint()
        if report { return try printReport(fingerprint: fingerprint, split: split) }
        let given = try blocksFrom.map { try givenBlocks(path: $0, fingerprint: fingerprint, split: split, roundedTo: weights) }
        let layers = try exits.map { try ListArgument.layers($0, option: "--exits") }
            ?? given.map { $0.keys.sorted() } ?? [max(1, split / 2), split]
        if let bad = layers.first(where: { $0 > split }) { throw ValidationError("exit layer \(bad) is above the split \(split)") }
        if let stray = try blockChoice().perExit.keys.first(where: { !layers.contains($0) }) {
            throw ValidationError("--block names exit \(stray), which is not among the exits \(layers.map(String.init).joined(separator: ","))")
        }
        if let layerSource, layerSource < 0 || layerSource >= config.layerCount {
            throw ValidationError("--layer-source must be a layer of the model, 0..<\(config.layerCount) (got \(layerSource))")
        }
        let topSource = layerSource ?? config.layerCount - 1
        if layerDepth < 1 || layerDepth > min(4, topSource + 1) {
            throw ValidationError("--layer-depth must be in 1...\(min(4, topSource + 1)) (copies of layers ending at \(topSource); got \(layerDepth))")
        }

        let format = try chatTemplate.chatFormat(gguf: gguf, tokenizer: tokenizer)
        let started = Date()
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, activations: modelOptions.activations, pool: pool)
        let data = try dataset(model: model, tokenizer: tokenizer, format: format, layers: layers, split: split, fingerprint: fingerprint,
                               givenKinds: given.map { $0.values.map(\.block.name) } ?? [])
        var options = Calibrator.Options(split: split, exits: Array(Set(layers)).sorted())
        options.targetPrecision = target
        options.ridgeStrength = ridge
        options.seed = seed
        options.splitPrompts = data.splitPrompts
        (options.block, options.blocks) = try blockChoice()
        options.mlpWidth = mlpWidth
        options.weightPrecision = weights ?? .f32
        options.shortlistMinimumCount = shortlistMinCount
        options.exitRule = exitRule
        options.shortlistRows = try shortlistRowType()
        options.givenExits = given ?? [:]
        options.layerSource = layerSource
        options.layerDepth = layerDepth
        options.training.maxEpochs = epochs
        options.training.loss = LossOptions(klWeight: klWeight, crossEntropyWeight: top1Weight)
        options.layerTraining.loss = options.training.loss
        options.layerTraining.maxEpochs = epochs
        options.training.cosineSchedule = lrSchedule == .cosine
        options.layerTraining.cosineSchedule = lrSchedule == .cosine
        if let learningRate {
            options.training.learningRate = learningRate
            options.layerTraining.learningRate = learningRate
        }
        let bar = ProgressReporter(interval: 10)
        var result = try Calibrator(model: model, options: options).run(data.data, fingerprint: fingerprint) { message in
            if message.contains(": training") {
                // Lines with an epoch's validation loss are the training's record: never dropped from a log.
                bar.update(message, milestone: message.contains(", validation "))
            } else {
                bar.finish()
                Console.status(message)
            }
        }
        bar.finish()
        result.notes["seconds"] = String(format: "%.1f", Date().timeIntervalSince(started))
        result.notes["max_tokens"] = String(maxTokens)
        result.notes["block"] = blocksFrom.map { "given: \($0)" } ?? block
        let path = output ?? CalibrationStore.defaultPath(fingerprint: fingerprint, split: split)
        try result.write(to: path)
        Console.status("wrote \(path) in \(result.notes["seconds"]!) s")
        try show(result, path: path)
    }

    /// The full model's states for the prompt set (chat prompts in the model's `format`), from the cache when an
    /// identical run made them.
    /// The extra prompts' ids follow the built-in ones', whose count is returned as `splitPrompts`.
    private func dataset(model: LlamaModel, tokenizer: Tokenizer, format: ChatFormat, layers: [Int],
                         split: Int, fingerprint: [UInt8], givenKinds: [String]) throws -> (data: ExitDataset, splitPrompts: Int) {
        let limit = prompts ?? Int.max
        let chat = { (text: String) in format.render(user: text) }
        let set = CalibrationPromptSet.self
        let builtIn = (set.instructions.prefix(limit) + set.questions.prefix(limit)).map { CalibrationPrompt(text: chat($0), parseSpecial: true) }
            + set.openings.prefix(limit).map { CalibrationPrompt(text: $0, parseSpecial: false) }
        // One greedy answer per extra prompt: new prompts vary the data more than more answers do.
        var extra = TrainingPrompts.requests(count: extraPrompts).map { CalibrationPrompt(text: chat($0), parseSpecial: true, answers: 1) }
        if let passages {
            guard let text = try? String(contentsOfFile: passages, encoding: .utf8) else {
                throw CLIError("--passages: cannot read \(passages) as UTF-8 text")
            }
            let picked = TrainingPrompts.passages(from: text, count: passageCount)
            guard !picked.isEmpty else { throw CLIError("--passages: \(passages) has no passage of 40 words that starts a sentence") }
            extra += picked.map { CalibrationPrompt(text: $0, parseSpecial: false, answers: 1) }
        }
        let all: [CalibrationPrompt] = builtIn + extra
        let kinds = ((try? blockChoice()).map { [$0.default] + Array($0.perExit.values) } ?? []) + givenKinds
        let samples = self.samples ?? (kinds.allSatisfy { $0 == "ridge" } ? 1 : 4)
        let cachePath = CalibrationStore.datasetPath(fingerprint: fingerprint, key: "p\(all.count)-t\(maxTokens)-s\(samples)")
        let key = ["prompts": String(all.count), "max_tokens": String(maxTokens),
                   "prompt_hash": String(fnv1a(all.map(\.text).joined(separator: "\u{1}")), radix: 16)]
        if !fresh, let cached = ExitDataset.read(path: cachePath, exitLayers: layers, expected: key) {
            Console.status("using cached calibration data (\(cached.count) positions) from \(cachePath)")
            return (cached, builtIn.count)
        }
        let collector = ExitDataCollector(model: model, tokenizer: tokenizer, exitLayers: Array(Set(layers + Self.analysisLayers(split: split, layerCount: model.config.layerCount))).sorted())
        collector.maxTokens = maxTokens
        collector.samplesPerPrompt = samples
        let start = Date()
        let bar = ProgressReporter()
        let data = try collector.collect(all) { done, total, positions in
            let elapsed = Date().timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            bar.update("\(Console.bar(done, total)) answers \(done)/\(total), \(positions) positions, \(Int(elapsed)) s, ETA \(Int(eta)) s")
        }
        bar.finish()
        Console.status(String(format: "collected %d positions from %d prompts (%d answers) in %.1f s", data.count, all.count,
                              builtIn.count * samples + extra.count, Date().timeIntervalSince(start)))
        try? data.write(to: cachePath, metadata: key)
        return (data, builtIn.count)
    }

    /// `--block`: a default kind and per-exit kinds ("mlp,15:layer").
    func blockChoice() throws -> (default: String, perExit: [Int: String]) {
        let kinds = ["ridge", "mlp", "layer"]
        var choice = (default: "ridge", perExit: [Int: String]())
        for item in block.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let parts = item.split(separator: ":").map(String.init)
            guard let kind = parts.last, kinds.contains(kind), parts.count <= 2 else {
                throw ValidationError("--block takes ridge, mlp or layer, optionally per exit as LAYER:KIND (got \(block))")
            }
            if parts.count == 1 {
                choice.default = kind
            } else {
                guard let layer = Int(parts[0]), layer > 0 else { throw ValidationError("--block: \(item) does not name an exit layer") }
                choice.perExit[layer] = kind
            }
        }
        return choice
    }

    /// Layers recorded besides the requested exits, so later runs with other exits reuse the data.
    /// Layers recorded besides the exits, for the report's per-layer analysis: SmolLM2's 8, 12, 15, 18, 20
    /// and 24 of 30, at the same depths in a model of another length (Gemma 3 270M: 4, 7, 9, 10, 12, 14 of 18).
    static func analysisLayers(split: Int, layerCount: Int) -> [Int] {
        Array(Set([8, 12, 15, 18, 20, 24].map { $0 * layerCount / 30 }.filter { $0 > 0 && $0 < layerCount && $0 <= max(split, layerCount * 4 / 5) })).sorted()
    }

    private func printReport(fingerprint: [UInt8], split: Int) throws {
        guard let (c, path) = try CalibrationStore.load(calibration, fingerprint: fingerprint, split: split) else {
            throw CLIError("no calibration for split \(split): run `collm calibrate --split \(split)` first, or pass --calibration FILE")
        }
        try show(c, path: path)
    }

    /// `--shortlist-rows`: nil for the head's own format.
    func shortlistRowType() throws -> GGMLType? {
        if shortlistRows == "head" { return nil }
        guard let type = GGMLType(named: shortlistRows), [GGMLType.q8_0, .q5_0, .q4_0].contains(type) else {
            throw ValidationError("--shortlist-rows takes head, q8_0, q5_0 or q4_0 (got \(shortlistRows))")
        }
        return type
    }

    /// `--blocks-from`: the file's trained exits by layer, refused unless made for this model and split; with
    /// `precision`, their weights rounded to it.
    private func givenBlocks(path: String, fingerprint: [UInt8], split: Int,
                             roundedTo precision: WeightPrecision?) throws -> [Int: ExitCalibration.Exit] {
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("--blocks-from: no file at \(path)") }
        let file = try ExitCalibration(path: path)
        try file.check(fingerprint: fingerprint)
        guard file.split == split else {
            throw CLIError("--blocks-from: \(path) was made for split \(file.split), not \(split); pass --split \(file.split)")
        }
        var trained = file.exits.filter { $0.block.name == "mlp" || $0.block.name == "layer" }
        guard !trained.isEmpty else { throw CLIError("--blocks-from: \(path) has no trained block (only ridge adapters, which are refitted anyway)") }
        if let precision {
            for i in trained.indices where trained[i].weights != precision {
                trained[i].block = trained[i].block.rounded(to: precision)
                trained[i].weights = precision
            }
        }
        return Dictionary(trained.map { ($0.layer, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private func show(_ c: ExitCalibration, path: String) throws {
        if let svg { try CalibrationReport.svg(c).write(toFile: svg, atomically: true, encoding: .utf8) }
        if json {
            try Console.printJSON(CalibrationJSON(c, path: path))
        } else {
            Console.write(CalibrationReport.table(c) + "\n")
        }
    }
}

/// FNV-1a over UTF-8: identifies a prompt set in the data cache's key.
func fnv1a(_ text: String) -> UInt64 {
    text.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}

/// The `calibrate --json` object (README, "Commands").
struct CalibrationJSON: Encodable {
    struct Exit: Encodable {
        var layer: Int
        var block: String
        /// Layers of a layer block.
        var layer_depth: Int?
        /// How a trained block's weights are stored (f32, f16, q8, q5, q4).
        var weights: String?
        var agreement: Double
        var exit_rate_at_precision: [String: Double]
        var threshold: Float
        var test_exit_rate: Double
        var test_precision: Double
        var logit_lens: ExitCalibration.Evaluation
        var ridge: ExitCalibration.Evaluation?
        var training: [String: Double]?
        var curve: [ExitCalibration.CurvePoint]
    }

    var split: Int
    var path: String
    var target_precision: Double
    /// What the thresholds and curves measure confidence over (`ExitRule`).
    var exit_rule: String
    var exits: [Exit]
    var shortlist_size: Int
    /// The shortlist rows' format (`calibrate --shortlist-rows`); absent: the head's own.
    var shortlist_rows: String?
    var notes: [String: String]

    init(_ c: ExitCalibration, path: String) {
        split = c.split
        self.path = path
        target_precision = c.targetPrecision
        exit_rule = c.rule.rawValue
        exits = c.exits.map {
            // Depth for a layer block; the stored precision for trained blocks (ridge adapters are always f32).
            var (depth, weights): (Int?, String?) = (nil, nil)
            switch $0.block {
            case let .layer(block): (depth, weights) = (block.depth, $0.weights.rawValue)
            case .mlp: weights = $0.weights.rawValue
            case .identity, .ridge: break
            }
            return Exit(layer: $0.layer, block: $0.block.name, layer_depth: depth, weights: weights,
                        agreement: $0.adapter.agreement,
                 exit_rate_at_precision: $0.adapter.exitRateAtPrecision, threshold: $0.threshold,
                 test_exit_rate: $0.testExitRate, test_precision: $0.testPrecision, logit_lens: $0.logitLens,
                 ridge: $0.ridge, training: $0.training.isEmpty ? nil : $0.training, curve: $0.adapter.curve)
        }
        shortlist_size = c.shortlist.count
        shortlist_rows = c.shortlistRows?.lowercasedName
        notes = c.notes
    }
}
