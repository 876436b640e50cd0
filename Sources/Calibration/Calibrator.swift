import CollabCore
import ExitTraining
import Exits
import Foundation
import LLM

/// Fits exit adapters and picks thresholds from an `ExitDataset`, by prompt: one part fits the
/// adapters, one selects thresholds for the target precision, and the last (never seen by either)
/// measures the curves that the report shows.
public struct Calibrator {
    public struct Options: Sendable {
        public var split: Int
        public var exits: [Int]
        public var targetPrecision = 0.9
        public var ridgeStrength = 1e-3
        /// Fractions of prompts for fitting and for threshold selection; the rest is the test part.
        public var fitShare = 0.6
        public var selectShare = 0.2
        /// Fewest selection tokens that must exit for a threshold to count.
        public var minimumExits = 10
        /// Prompts with ids below this count are split into fit, selection and test parts; the rest
        /// (`TrainingPrompts`) only ever fit. nil: every prompt is split.
        public var splitPrompts: Int?
        public var seed: UInt64 = 42
        /// "ridge"; "mlp": a residual MLP block trained by distillation from the ridge adapter;
        /// "layer": a copy of one of the model's layers, trained as an exit block over whole sequences.
        public var block = "ridge"
        /// Per-exit choices that override `block` (exit layer -> kind).
        public var blocks: [Int: String] = [:]
        public var mlpWidth = 512
        /// How the file will store trained blocks: they are rounded to it before thresholds are picked.
        public var weightPrecision = WeightPrecision.f32
        /// The screen's shortlist keeps the full model's tokens chosen at least this often in the data
        /// (besides every token an exit was confident about): rarer tokens cost screen work on every
        /// token and almost never exit. 1 keeps them all, so the screen changes no decision on the data.
        public var shortlistMinimumCount = 1
        /// What thresholds and curves measure confidence over. Under `.shortlist` the shortlist is the frequent
        /// tokens alone, fixed before any exit is evaluated (the full rule's shortlist also takes in every token an
        /// exit was confident about, so its screen changes no decision).
        public var exitRule = ExitRule.full
        /// The format the shortlist's head rows are re-quantized to (nil: the head's own); thresholds are picked
        /// on logits from these rows. Only under `.shortlist`: the full rule's screen bounds the head's own logits.
        public var shortlistRows: GGMLType?
        /// Trained blocks to evaluate instead of training (by exit layer), e.g. an earlier file's: thresholds
        /// and curves are picked again for them (`calibrate --blocks-from`).
        public var givenExits: [Int: ExitCalibration.Exit] = [:]
        /// The model layer a "layer" block starts from (nil: the last layer).
        public var layerSource: Int?
        /// Layers in a layer block: copies of the model's layers that end at `layerSource`.
        public var layerDepth = 1
        public var training = TrainingOptions.exitDefaults
        public var layerTraining = TrainingOptions.layerExitDefaults

        /// The block kind of exit `layer`.
        public func block(for layer: Int) -> String { blocks[layer] ?? block }

        public init(split: Int, exits: [Int]) {
            self.split = split
            self.exits = exits
        }
    }

    public struct Parts: Sendable {
        public var fit: [Int], select: [Int], test: [Int]
    }

    public let model: LlamaModel
    public let options: Options

    public init(model: LlamaModel, options: Options) {
        self.model = model
        self.options = options
    }

    /// Splits the dataset's rows by prompt (seeded shuffle of prompt ids).
    public func parts(of data: ExitDataset) -> Parts {
        let all = Set(data.prompt.map(Int.init))
        let trainingOnly = trainingOnlyPrompts(among: all)
        var ids = all.subtracting(trainingOnly).sorted()
        var rng = SplitMix64(seed: options.seed)
        for i in stride(from: ids.count - 1, to: 0, by: -1) { ids.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let nFit = max(1, Int((Double(ids.count) * options.fitShare).rounded()))
        let nSelect = max(1, Int((Double(ids.count) * options.selectShare).rounded()))
        let fit = Set(ids.prefix(nFit)).union(trainingOnly), select = Set(ids.dropFirst(nFit).prefix(nSelect))
        let test = Set(ids.dropFirst(nFit + nSelect))
        return Parts(fit: data.indices(ofPrompts: fit), select: data.indices(ofPrompts: select),
                     test: data.indices(ofPrompts: test))
    }

    /// `progress(message)` reports each stage (and training steps, often: rate-limit the display).
    public func run(_ data: ExitDataset, fingerprint: [UInt8], progress: (String) -> Void = { _ in }) throws -> ExitCalibration {
        let parts = parts(of: data)
        guard !parts.fit.isEmpty, !parts.select.isEmpty, !parts.test.isEmpty else {
            throw CollabError(.invalidArgument, "calibration needs more prompts: fit/select/test parts must all be non-empty")
        }
        guard options.shortlistRows == nil || options.exitRule == .shortlist else {
            throw CollabError(.invalidArgument, "re-quantized shortlist rows need the shortlist rule: the full rule's screen bounds the head's own logits")
        }
        var shortlist = Self.frequentTokens(data.top1.map(Int.init), minimumCount: options.shortlistMinimumCount)
        let evaluator = try makeEvaluator(shortlist: shortlist)
        let trains = options.exits.contains { options.block(for: $0) != "ridge" && options.givenExits[$0] == nil }
        let trainer = trains ? ExitBlockTrainer(head: try FrozenHead(file: model.file), pool: model.pool) : nil
        var exits: [ExitCalibration.Exit] = []
        var testOutcomes: [ExitOutcomes] = []
        var notes: [String: String] = [:]
        let greedy = Self.greedyRows(parts.test, of: data)
        for layer in options.exits {
            progress("exit \(layer): fitting the ridge adapter on \(parts.fit.count) tokens")
            let fit = RidgeRegression.fit(inputs: data.rows(of: data.states[layer]!, parts.fit),
                                          targets: data.rows(of: data.target, parts.fit), width: data.width,
                                          strength: options.ridgeStrength, pool: model.pool)
            let adapter = ExitAdapter(matrix: fit.matrix, bias: fit.bias)
            progress("exit \(layer): evaluating on \(parts.select.count) selection and \(parts.test.count) test tokens")
            var (select, selectTop) = try evaluator.evaluate(data, layer: layer, rows: parts.select, adapter: adapter)
            var (test, testTop) = try evaluator.evaluate(data, layer: layer, rows: parts.test, adapter: adapter)
            let (lens, _) = try evaluator.evaluate(data, layer: layer, rows: parts.test, adapter: nil)
            var exit = ExitCalibration.Exit(layer: layer, block: .ridge(matrix: fit.matrix, bias: fit.bias), threshold: 1.01,
                                            testExitRate: 0, testPrecision: 1, adapter: test.evaluation, logitLens: lens.evaluation)
            let kind = options.block(for: layer)
            if let given = options.givenExits[layer], given.block.name != "ridge" {
                let ridge = test.evaluation
                ((select, selectTop), (test, testTop)) = try evaluateGiven(given.block, data: data, layer: layer, parts: parts,
                                                                            shortlist: shortlist, progress: progress)
                exit = Self.blockExit(layer: layer, block: given.block, test: test, lens: lens, ridge: ridge,
                                      weights: given.weights, training: given.training)
            } else if let trainer, kind == "layer" {
                let trained = try trainLayer(trainer, data: data, layer: layer, parts: parts, shortlist: shortlist, progress: progress)
                (select, selectTop) = trained.select
                let ridge = test.evaluation
                (test, testTop) = trained.test
                exit = Self.trainedExit(layer: layer, block: .layer(trained.block.block), report: trained.block.report, test: test,
                                        lens: lens, ridge: ridge, weights: options.weightPrecision,
                                        facts: ["macs_per_token": Double(trained.block.block.multiplyAddsPerToken),
                                                "source_layer": Double(trained.source),
                                                "training_positions": Double(trained.positions)])
            } else if let trainer, kind == "mlp" {
                let block = try trainMLP(trainer, data: data, layer: layer, parts: parts, ridge: fit, progress: progress)
                (select, selectTop) = try evaluator.evaluate(data, layer: layer, rows: parts.select, adapter: ExitMLP(block: block.block))
                let ridge = test.evaluation
                (test, testTop) = try evaluator.evaluate(data, layer: layer, rows: parts.test, adapter: ExitMLP(block: block.block))
                exit = Self.trainedExit(layer: layer, block: .mlp(block.block), report: block.report, test: test, lens: lens,
                                        ridge: ridge, weights: options.weightPrecision,
                                        facts: ["macs_per_token": Double(block.block.shape.multiplyAddsPerToken)])
            }
            exit.threshold = select.threshold(forPrecision: options.targetPrecision, minimum: options.minimumExits)
            // The full rule's screen must keep every token this exit could be confident about.
            if options.exitRule == .full {
                for (outcomes, top) in [(select, selectTop), (test, testTop)] {
                    for (c, id) in zip(outcomes.confidence, top) where c >= 0.3 { shortlist.insert(id) }
                }
            }
            let atThreshold = test.point(threshold: Double(exit.threshold))
            exit.testExitRate = atThreshold.exitRate
            exit.testPrecision = atThreshold.agreement
            testOutcomes.append(test)
            exits.append(exit)
            let greedyTest = test.subset(greedy)
            for precision in [0.8, 0.9] {
                notes["exit.\(layer).greedy.exit_rate.\(precision)"] = String(format: "%.4f", greedyTest.exitRate(atPrecision: precision))
            }
        }
        let cascade = Self.cascade(testOutcomes, thresholds: exits.map(\.threshold))
        let promptIds = Set(data.prompt.map(Int.init))
        let trainingOnly = trainingOnlyPrompts(among: promptIds).count
        notes["tokens.fit"] = String(parts.fit.count)
        notes["tokens.select"] = String(parts.select.count)
        notes["tokens.test"] = String(parts.test.count)
        notes["tokens.test.greedy"] = String(greedy.count)
        notes["prompts"] = String(promptIds.count)
        notes["prompts.training_only"] = String(trainingOnly)
        notes["collab.edge_rate"] = String(format: "%.4f", cascade.edgeRate)
        notes["collab.edge_precision"] = String(format: "%.4f", cascade.edgePrecision)
        notes["collab.agreement"] = String(format: "%.4f", cascade.agreement)
        return ExitCalibration(
            fingerprint: ExitCalibration.hex(fingerprint), split: options.split, targetPrecision: options.targetPrecision,
            exits: exits, shortlist: shortlist.sorted(), rule: options.exitRule, shortlistRows: options.shortlistRows, notes: notes)
    }

    /// An evaluator under the options' rule; `shortlist` is what the shortlist rule decides over.
    private func makeEvaluator(shortlist: Set<Int>) throws -> ExitEvaluator {
        guard options.exitRule == .shortlist else { return ExitEvaluator(model: model) }
        return ExitEvaluator(model: model, screen: try VocabularyScreen(tokens: shortlist.sorted(), model: model, rowType: options.shortlistRows))
    }

    /// A given block's outcomes on the selection and test rows (a layer block over whole sequences).
    private func evaluateGiven(_ block: ExitCalibration.Block, data: ExitDataset, layer: Int, parts: Parts, shortlist: Set<Int>,
                               progress: (String) -> Void) throws -> (select: (ExitOutcomes, [Int]), test: (ExitOutcomes, [Int])) {
        let evaluator = try makeEvaluator(shortlist: shortlist)
        switch block {
        case let .layer(stacked):
            progress("exit \(layer): running the full model over whole sequences for the given layer block")
            func outcomes(_ rows: [Int]) throws -> (ExitOutcomes, [Int]) {
                let sequences = try SequenceExitData(model: model, data: data, layer: layer, rows: rows, topK: data.teacherK)
                return try evaluator.evaluate(data, rows: rows,
                                              inputs: try sequences.outputs(of: stacked.layers, at: rows, data: data, pool: model.pool))
            }
            return (try outcomes(parts.select), try outcomes(parts.test))
        case let .mlp(mlp):
            let transform = ExitMLP(block: mlp)
            return (try evaluator.evaluate(data, layer: layer, rows: parts.select, adapter: transform),
                    try evaluator.evaluate(data, layer: layer, rows: parts.test, adapter: transform))
        case .identity, .ridge:
            preconditionFailure("ridge adapters and the logit lens are fitted, never given")
        }
    }

    /// The prompts that only ever fit (ids from `splitPrompts` on).
    private func trainingOnlyPrompts(among ids: Set<Int>) -> Set<Int> {
        options.splitPrompts.map { limit in ids.filter { $0 >= limit } } ?? []
    }

    /// Positions (indices into `rows`) of each prompt's first answer, the greedy one: collab decodes
    /// greedily, so these are the tokens its edge meets.
    static func greedyRows(_ rows: [Int], of data: ExitDataset) -> [Int] {
        var first: [Int32: Int32] = [:]
        for row in rows { first[data.prompt[row]] = min(first[data.prompt[row]] ?? .max, data.sequence[row]) }
        return rows.indices.filter { data.sequence[rows[$0]] == first[data.prompt[rows[$0]]] }
    }

    /// Distils a residual MLP block, started from the ridge adapter, on the fit part (the selection
    /// part decides early stopping).
    private func trainMLP(_ trainer: ExitBlockTrainer, data: ExitDataset, layer: Int, parts: Parts, ridge: RidgeRegression.Fit,
                          progress: (String) -> Void) throws -> TrainingResult<ExitBlock> {
        func set(_ rows: [Int]) throws -> DistillationSet { try data.distillationSet(layer: layer, rows: rows) }
        let initial = try ExitBlock(width: data.width, hiddenWidth: options.mlpWidth, adapterMatrix: ridge.matrix,
                                    adapterBias: ridge.bias, seed: options.seed)
        var training = options.training
        training.seed = options.seed
        let (fitSet, selectSet) = (try set(parts.fit), try set(parts.select))
        var result = try withoutActuallyEscaping(progress) { progress in
            try trainer.train(initial, on: fitSet, validation: selectSet, options: training) { p in
                progress(Self.status(p, "exit \(layer): training the MLP block"))
            }
        }
        result.block = result.block.rounded(to: options.weightPrecision)
        return result
    }

    /// Distils a copy of one of the model's layers (the last by default) as the exit block, on whole
    /// sequences of the fit part (prompt positions included); the selection part decides early
    /// stopping. Returns the block and its outcomes on the selection and test rows.
    private func trainLayer(_ trainer: ExitBlockTrainer, data: ExitDataset, layer: Int, parts: Parts, shortlist: Set<Int>,
                            progress: (String) -> Void) throws
        -> (block: TrainingResult<StackedTransformerExitBlock>, source: Int, positions: Int,
            select: (ExitOutcomes, [Int]), test: (ExitOutcomes, [Int])) {
        let k = data.teacherK
        progress("exit \(layer): running the full model over whole sequences for the layer block")
        let fit = try SequenceExitData(model: model, data: data, layer: layer, rows: parts.fit, topK: k)
        let select = try SequenceExitData(model: model, data: data, layer: layer, rows: parts.select, topK: k)
        let test = try SequenceExitData(model: model, data: data, layer: layer, rows: parts.test, topK: k)
        let source = options.layerSource ?? model.config.layerCount - 1
        let sources = Array((source - options.layerDepth + 1)...source)
        let initial = try StackedTransformerExitBlock(copying: sources, of: model.file)
        var training = options.layerTraining
        training.seed = options.seed
        let what = sources.count == 1 ? "the layer block (from layer \(source))"
            : "the \(sources.count)-layer block (from layers \(sources.map(String.init).joined(separator: ",")))"
        var result = try withoutActuallyEscaping(progress) { progress in
            try trainer.train(initial, on: fit.set, validation: select.set, options: training) { p in
                progress(Self.status(p, "exit \(layer): training \(what)"))
            }
        }
        result.block = result.block.rounded(to: options.weightPrecision)
        let evaluator = try makeEvaluator(shortlist: shortlist)
        let layers = result.block.layers
        let selectOutcomes = try evaluator.evaluate(data, rows: parts.select,
                                                    inputs: try select.outputs(of: layers, at: parts.select, data: data, pool: model.pool))
        let testOutcomes = try evaluator.evaluate(data, rows: parts.test,
                                                  inputs: try test.outputs(of: layers, at: parts.test, data: data, pool: model.pool))
        return (result, source, fit.set.rows, selectOutcomes, testOutcomes)
    }

    /// The tokens that occur at least `minimumCount` times in `tokens`.
    static func frequentTokens(_ tokens: [Int], minimumCount: Int) -> Set<Int> {
        var counts: [Int: Int] = [:]
        for token in tokens { counts[token, default: 0] += 1 }
        return Set(counts.filter { $0.value >= minimumCount }.keys)
    }

    /// The progress line of a training run: "<what>, epoch e/E step s/S, loss ..., ETA ...".
    private static func status(_ p: TrainingProgress, _ what: String) -> String {
        let validation = p.validationLoss.map { String(format: ", validation %.3f", $0) } ?? ""
        // Before the first step there is no training loss yet.
        let loss = p.trainLoss.isFinite ? String(format: "loss %.3f", p.trainLoss) : "loss -"
        return "\(what), epoch \(p.epoch)/\(p.maxEpochs) step \(p.step)/\(p.maxSteps), " + loss
            + validation + String(format: ", %.0f s, ETA %.0f s", p.elapsedSeconds, p.etaSeconds)
    }

    /// A trained exit's record: its held-out figures, the ridge adapter's for comparison, and the
    /// training facts (`facts` adds the block's own, e.g. its cost per token).
    private static func trainedExit(layer: Int, block: ExitCalibration.Block, report: TrainingReport, test: ExitOutcomes,
                                    lens: ExitOutcomes, ridge: ExitCalibration.Evaluation, weights: WeightPrecision,
                                    facts: [String: Double]) -> ExitCalibration.Exit {
        let training = ["seconds": report.seconds, "epochs": Double(report.epochs.count),
                        "best_epoch": Double(report.bestEpoch), "ms_per_step": report.meanStepMilliseconds]
            .merging(facts) { a, _ in a }
        return blockExit(layer: layer, block: block, test: test, lens: lens, ridge: ridge, weights: weights, training: training)
    }

    /// A trained or given block's exit before its threshold is picked; `ridge` is the adapter it is compared with.
    private static func blockExit(layer: Int, block: ExitCalibration.Block, test: ExitOutcomes, lens: ExitOutcomes,
                                  ridge: ExitCalibration.Evaluation, weights: WeightPrecision,
                                  training: [String: Double]) -> ExitCalibration.Exit {
        var exit = ExitCalibration.Exit(layer: layer, block: block, threshold: 1.01, testExitRate: 0,
                                        testPrecision: 1, adapter: test.evaluation, logitLens: lens.evaluation)
        (exit.ridge, exit.weights, exit.training) = (ridge, weights, training)
        return exit
    }

    /// Collab on the test tokens, teacher-forced: each token goes to the first exit (in depth order)
    /// whose confidence reaches its threshold, else to the cloud, which equals the full model.
    /// Returns the share decided on the edge, their agreement, and the agreement over all tokens.
    static func cascade(_ outcomes: [ExitOutcomes], thresholds: [Float]) -> (edgeRate: Double, edgePrecision: Double, agreement: Double) {
        guard let count = outcomes.first?.count, count > 0 else { return (0, 1, 1) }
        var edge = 0, right = 0
        for i in 0..<count {
            guard let e = outcomes.indices.first(where: { outcomes[$0].confidence[i] >= thresholds[$0] }) else { continue }
            edge += 1
            if outcomes[e].agrees[i] { right += 1 }
        }
        let wrong = edge - right
        return (Double(edge) / Double(count), edge == 0 ? 1 : Double(right) / Double(edge), Double(count - wrong) / Double(count))
    }
}

extension TrainingOptions {
    /// For a copied layer as the exit block: a smaller step than the MLP's (it starts from trained
    /// weights), batches of whole sequences.
    public static var layerExitDefaults: TrainingOptions {
        var o = exitDefaults
        o.learningRate = 1e-3
        o.batchSize = 256
        return o
    }

    /// What worked for exit blocks on the default model (3e-3 beat 1e-3; see issue 6's note).
    public static var exitDefaults: TrainingOptions {
        var o = TrainingOptions()
        o.learningRate = 3e-3
        o.maxEpochs = 8
        o.patience = 2
        return o
    }
}
