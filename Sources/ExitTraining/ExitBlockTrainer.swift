import Exits
import Foundation
import LLM

/// Trains exit blocks by distillation with the backbone and the head frozen: mini-batches from a
/// seeded shuffle, AdamW, validation after every epoch, early stopping that keeps the best block.
/// MLP blocks batch shuffled rows; transformer blocks batch shuffled whole sequences.
/// Not thread-safe: one run at a time (the pool parallelizes inside each product).
public final class ExitBlockTrainer: @unchecked Sendable {
    public let head: FrozenHead
    public let pool: ThreadPool

    public init(head: FrozenHead, pool: ThreadPool) {
        self.head = head
        self.pool = pool
    }

    /// Trains from `initial` and returns the parameters with the best validation loss (or the last
    /// ones without a validation set). `progress` is called after every step and every validation.
    public func train(_ initial: ExitBlock, on train: DistillationSet, validation: DistillationSet? = nil,
                      options: TrainingOptions = TrainingOptions(),
                      progress: ((TrainingProgress) -> Void)? = nil) throws -> TrainingResult<ExitBlock> {
        try run(initial, train, validation, options, progress)
    }

    /// As above for a layer block (one or more transformer layers); batches are whole sequences (see
    /// `DistillationSet.positions`).
    public func train(_ initial: StackedTransformerExitBlock, on train: DistillationSet, validation: DistillationSet? = nil,
                      options: TrainingOptions = TrainingOptions(),
                      progress: ((TrainingProgress) -> Void)? = nil) throws -> TrainingResult<StackedTransformerExitBlock> {
        try run(initial, train, validation, options, progress)
    }

    /// As above for a single transformer layer (a one-layer stack).
    public func train(_ initial: TransformerExitBlock, on train: DistillationSet, validation: DistillationSet? = nil,
                      options: TrainingOptions = TrainingOptions(),
                      progress: ((TrainingProgress) -> Void)? = nil) throws -> TrainingResult<TransformerExitBlock> {
        let result = try self.train(try StackedTransformerExitBlock(layers: [initial]), on: train, validation: validation,
                                    options: options, progress: progress)
        return TrainingResult(block: result.block.layer(0), report: result.report)
    }

    // MARK: - Shared by both block kinds

    private func run<B: TrainableExitBlock>(_ initial: B, _ train: DistillationSet, _ validation: DistillationSet?,
                                           _ options: TrainingOptions,
                                           _ progress: ((TrainingProgress) -> Void)?) throws -> TrainingResult<B> {
        try check(initial.width, train)
        // An empty validation set would never be beaten (mean loss 0): train without one.
        let validation = validation?.rows == 0 ? nil : validation
        if let validation { try check(initial.width, validation) }
        guard train.rows > 0 else { throw TrainingError.emptyTrainingSet }
        let sequences = B.attendsOverSequences ? try attentionSequences(train) : nil
        let batchSize = max(1, min(options.batchSize, train.rows))
        // Steps per epoch vary a little when shuffled sequences pack differently; the ETA uses the first layout.
        let stepsPerEpoch = BatchPlan(rows: train.rows, batchSize: batchSize, sequences: sequences).batches.count
        // No batch exceeds the batch size, except a single sequence longer than it.
        let capacity = max(batchSize, sequences?.map(\.count).max() ?? 0)
        let blockPass = initial.makePass(rows: capacity)
        let headPass = HeadPass(head: head, rows: capacity)
        var optimizer = AdamW(parameterCount: initial.parameters.count, groups: initial.optimizerGroups(options),
                              learningRate: options.learningRate, beta1: options.beta1, beta2: options.beta2,
                              epsilon: options.adamEpsilon)
        var block = initial
        var gradient = [Float](repeating: 0, count: initial.parameters.count)
        var rng = Xoshiro256StarStar(seed: options.seed)
        let start = Date()
        var report = TrainingReport(initialValidation: nil, epochs: [], bestEpoch: 0, stoppedEarly: false,
                                    steps: 0, seconds: 0, trainingSeconds: 0)
        var best = block
        var bestLoss = Double.infinity
        func status(_ event: TrainingProgress.Event, epoch: Int, trainLoss: Double, validation: Double?) -> TrainingProgress {
            let perStep = report.steps > 0 ? report.trainingSeconds / Double(report.steps) : 0
            return TrainingProgress(event: event, epoch: epoch, maxEpochs: options.maxEpochs, step: report.steps,
                                    stepsPerEpoch: stepsPerEpoch, trainLoss: trainLoss, validationLoss: validation,
                                    bestValidationLoss: bestLoss.isFinite ? bestLoss : nil,
                                    elapsedSeconds: Date().timeIntervalSince(start),
                                    etaSeconds: Double(max(0, stepsPerEpoch * options.maxEpochs - report.steps)) * perStep)
        }
        if let validation {
            let summary = try measure(block, validation, options.loss, options.batchSize).summary
            report.initialValidation = summary
            bestLoss = summary.meanLoss
            progress?(status(.validation, epoch: 0, trainLoss: .nan, validation: summary.meanLoss))
        }
        var sinceBest = 0
        for epoch in 1...max(1, options.maxEpochs) {
            let epochStart = Date()
            let (shuffled, order) = try Self.shuffle(train, sequences: sequences, &rng)
            let plan = BatchPlan(rows: shuffled.rows, batchSize: batchSize, sequences: order)
            let scale = options.learningRateScale(epoch: epoch)
            var lossSum = 0.0
            var rowsSeen = 0
            for batch in plan.batches {
                let stepStart = Date()
                let (first, n) = (batch.rows.lowerBound, batch.rows.count)
                let losses = block.parameters.withUnsafeMutableBufferPointer { p in
                    gradient.withUnsafeMutableBufferPointer { g in
                        shuffled.hidden.withUnsafeBufferPointer { h in
                            let rows = h.baseAddress! + first * shuffled.width
                            blockPass.forward(parameters: p.baseAddress!, hidden: rows, segments: batch.segments, pool: pool)
                            let out = headPass.run(z: blockPass.z, rows: n, targets: shuffled, first: first,
                                                   options: options.loss, withGradient: true, pool: pool)
                            blockPass.backward(parameters: p.baseAddress!, hidden: rows, dz: headPass.dz, rows: n,
                                               gradient: g.baseAddress!, pool: pool)
                            optimizer.update(p.baseAddress!, gradient: g.baseAddress!, scale: scale)
                            return out.reduce(0.0) { $0 + Double($1.loss) }
                        }
                    }
                }
                lossSum += losses
                rowsSeen += n
                report.steps += 1
                report.trainingSeconds += Date().timeIntervalSince(stepStart)
                progress?(status(.step, epoch: epoch, trainLoss: lossSum / Double(rowsSeen), validation: nil))
            }
            var summary = EpochSummary(epoch: epoch, trainLoss: lossSum / Double(max(1, rowsSeen)), validation: nil,
                                       seconds: 0)
            if let validation {
                let v = try measure(block, validation, options.loss, options.batchSize).summary
                summary.validation = v
                if v.meanLoss < bestLoss {
                    (bestLoss, best, report.bestEpoch, sinceBest) = (v.meanLoss, block, epoch, 0)
                } else {
                    sinceBest += 1
                }
                progress?(status(.validation, epoch: epoch, trainLoss: summary.trainLoss, validation: v.meanLoss))
            } else {
                (best, report.bestEpoch) = (block, epoch)
            }
            summary.seconds = Date().timeIntervalSince(epochStart)
            report.epochs.append(summary)
            if validation != nil, sinceBest >= max(1, options.patience), epoch < options.maxEpochs {
                report.stoppedEarly = true
                break
            }
        }
        report.seconds = Date().timeIntervalSince(start)
        return TrainingResult(block: best, report: report)
    }

    /// Shapes agree, and every teacher id indexes the head (the loss kernel reads logits[id] unchecked).
    func check(_ width: Int, _ set: DistillationSet) throws {
        guard width == head.width, set.width == head.width else {
            throw TrainingError.shapeMismatch("block width \(width), data width \(set.width), head width \(head.width)")
        }
        guard set.topK <= 1024 else { throw TrainingError.shapeMismatch("top-\(set.topK) targets (at most 1024)") }
        let vocab = Int32(head.vocabularySize)
        let valid = set.teacherIds.withUnsafeBufferPointer { ids in
            set.teacherTop1.withUnsafeBufferPointer { top in
                !ids.contains { $0 < 0 || $0 >= vocab } && !top.contains { $0 < 0 || $0 >= vocab }
            }
        }
        guard valid else { throw TrainingError.shapeMismatch("teacher ids outside the vocabulary (0..<\(vocab))") }
    }

    /// Longest sequence a transformer block trains on: attention keeps heads x rows^2 probabilities.
    static let maxSequenceRows = 4096

    /// The set's sequences for a block that attends, refusing runaway lengths (a set built from
    /// plain arrays without `positions` is one sequence of every row).
    func attentionSequences(_ set: DistillationSet) throws -> [Range<Int>] {
        let sequences = try set.sequences()
        if let longest = sequences.map(\.count).max(), longest > Self.maxSequenceRows {
            throw TrainingError.shapeMismatch("a sequence of \(longest) rows (at most \(Self.maxSequenceRows)): give the set its rows' positions")
        }
        return sequences
    }

    /// The epoch's order: shuffled rows, or shuffled whole sequences (returned, in their new order).
    static func shuffle(_ set: DistillationSet, sequences: [Range<Int>]?,
                        _ rng: inout Xoshiro256StarStar) throws -> (DistillationSet, [Range<Int>]?) {
        guard let sequences else { return (set.subset(permutation(set.rows, &rng)), nil) }
        var rows: [Int] = []
        var order: [Range<Int>] = []
        for s in permutation(sequences.count, &rng).map({ sequences[$0] }) {
            order.append(rows.count..<rows.count + s.count)
            rows += Array(s)
        }
        return (set.subset(rows), order)
    }

    /// A Fisher-Yates shuffle of 0..<n drawn from `rng` (spelled out so runs reproduce across
    /// standard-library versions).
    static func permutation(_ n: Int, _ rng: inout Xoshiro256StarStar) -> [Int] {
        var order = Array(0..<n)
        if n < 2 { return order }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return order
    }
}
