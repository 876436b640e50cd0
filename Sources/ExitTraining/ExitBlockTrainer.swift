import Foundation
import LLM

/// Trains exit blocks by distillation with the backbone and the head frozen: mini-batches from a
/// seeded shuffle, AdamW, validation after every epoch, early stopping that keeps the best block.
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
                      progress: ((TrainingProgress) -> Void)? = nil) throws -> TrainingResult {
        try check(initial, train)
        if let validation { try check(initial, validation) }
        guard train.rows > 0 else { throw TrainingError.emptyTrainingSet }
        let shape = initial.shape
        let batch = max(1, min(options.batchSize, train.rows))
        let stepsPerEpoch = (train.rows + batch - 1) / batch
        let blockPass = BlockPass(shape: shape, rows: batch)
        let headPass = HeadPass(head: head, rows: batch)
        var optimizer = AdamW(parameterCount: shape.parameterCount, groups: Self.groups(shape, options),
                              learningRate: options.learningRate, beta1: options.beta1, beta2: options.beta2,
                              epsilon: options.adamEpsilon)
        var block = initial
        var gradient = [Float](repeating: 0, count: shape.parameterCount)
        var rng = Xoshiro256StarStar(seed: options.seed)
        let start = Date()
        var report = TrainingReport(initialValidation: nil, epochs: [], bestEpoch: 0, stoppedEarly: false,
                                    steps: 0, seconds: 0, trainingSeconds: 0)
        var best = block
        var bestLoss = Double.infinity
        func status(_ event: TrainingProgress.Event, epoch: Int, trainLoss: Double, validation: Double?) -> TrainingProgress {
            let elapsed = Date().timeIntervalSince(start)
            let perStep = report.steps > 0 ? report.trainingSeconds / Double(report.steps) : 0
            let left = Double(stepsPerEpoch * options.maxEpochs - report.steps) * perStep
            return TrainingProgress(event: event, epoch: epoch, maxEpochs: options.maxEpochs, step: report.steps,
                                    stepsPerEpoch: stepsPerEpoch, trainLoss: trainLoss, validationLoss: validation,
                                    bestValidationLoss: bestLoss.isFinite ? bestLoss : nil, elapsedSeconds: elapsed,
                                    etaSeconds: left)
        }
        if let validation {
            let summary = try evaluate(block, on: validation, loss: options.loss).summary
            report.initialValidation = summary
            bestLoss = summary.meanLoss
            progress?(status(.validation, epoch: 0, trainLoss: .nan, validation: summary.meanLoss))
        }
        var sinceBest = 0
        for epoch in 1...max(1, options.maxEpochs) {
            let epochStart = Date()
            let shuffled = train.subset(Self.permutation(train.rows, &rng))
            let scale = options.cosineSchedule
                ? Float(0.55 + 0.45 * cos(Double.pi * Double(epoch - 1) / Double(max(1, options.maxEpochs))))
                : 1
            var lossSum = 0.0
            var rowsSeen = 0
            for first in stride(from: 0, to: shuffled.rows, by: batch) {
                let stepStart = Date()
                let n = min(batch, shuffled.rows - first)
                let losses = block.parameters.withUnsafeMutableBufferPointer { p in
                    gradient.withUnsafeMutableBufferPointer { g in
                        shuffled.hidden.withUnsafeBufferPointer { h in
                            let rows = h.baseAddress! + first * shape.width
                            blockPass.forward(parameters: p.baseAddress!, hidden: rows, rows: n, pool: pool)
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
                let v = try evaluate(block, on: validation, loss: options.loss).summary
                summary.validation = v
                if v.meanLoss < bestLoss {
                    bestLoss = v.meanLoss
                    best = block
                    report.bestEpoch = epoch
                    sinceBest = 0
                } else {
                    sinceBest += 1
                }
                progress?(status(.validation, epoch: epoch, trainLoss: summary.trainLoss, validation: v.meanLoss))
            } else {
                best = block
                report.bestEpoch = epoch
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

    /// Loss, agreement and per-row predictions of `block` on `set`.
    public func evaluate(_ block: ExitBlock, on set: DistillationSet, loss: LossOptions = LossOptions(),
                         batchSize: Int = 64) throws -> Evaluation {
        try check(block, set)
        let batch = max(1, min(batchSize, set.rows))
        let blockPass = BlockPass(shape: block.shape, rows: batch)
        let headPass = HeadPass(head: head, rows: batch)
        var predictions = [Int32]()
        var confidences = [Float]()
        predictions.reserveCapacity(set.rows)
        confidences.reserveCapacity(set.rows)
        var lossSum = 0.0, klSum = 0.0
        var agree = 0
        for first in stride(from: 0, to: set.rows, by: batch) {
            let n = min(batch, set.rows - first)
            let out = block.parameters.withUnsafeBufferPointer { p in
                set.hidden.withUnsafeBufferPointer { h in
                    blockPass.forward(parameters: p.baseAddress!, hidden: h.baseAddress! + first * block.shape.width,
                                      rows: n, pool: pool)
                    return headPass.run(z: blockPass.z, rows: n, targets: set, first: first, options: loss,
                                        withGradient: false, pool: pool)
                }
            }
            for (j, row) in out.enumerated() {
                lossSum += Double(row.loss)
                klSum += Double(row.kl)
                predictions.append(row.argmax)
                confidences.append(row.max_prob)
                if row.argmax == set.teacherTop1[first + j] { agree += 1 }
            }
        }
        let rows = Double(max(1, set.rows))
        let summary = Evaluation.Summary(rows: set.rows, meanLoss: lossSum / rows, meanKL: klSum / rows,
                                         top1Agreement: Double(agree) / rows)
        return Evaluation(summary: summary, predictions: predictions, maxProbabilities: confidences)
    }

    /// The mean loss over all rows of `set` (one batch) and its gradient in the flat parameter
    /// layout. For gradient checks and small custom loops.
    public func lossAndGradient(_ block: ExitBlock, on set: DistillationSet,
                                loss: LossOptions = LossOptions()) throws -> (loss: Double, gradient: [Float]) {
        try check(block, set)
        let n = set.rows
        let blockPass = BlockPass(shape: block.shape, rows: n)
        let headPass = HeadPass(head: head, rows: n)
        var gradient = [Float](repeating: 0, count: block.shape.parameterCount)
        let total = block.parameters.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer { g in
                set.hidden.withUnsafeBufferPointer { h in
                    blockPass.forward(parameters: p.baseAddress!, hidden: h.baseAddress!, rows: n, pool: pool)
                    let out = headPass.run(z: blockPass.z, rows: n, targets: set, first: 0, options: loss,
                                           withGradient: true, pool: pool)
                    blockPass.backward(parameters: p.baseAddress!, hidden: h.baseAddress!, dz: headPass.dz, rows: n,
                                       gradient: g.baseAddress!, pool: pool)
                    return out.reduce(0.0) { $0 + Double($1.loss) }
                }
            }
        }
        return (total / Double(max(1, n)), gradient)
    }

    private func check(_ block: ExitBlock, _ set: DistillationSet) throws {
        guard block.shape.width == head.width, set.width == head.width else {
            throw TrainingError.shapeMismatch("block width \(block.shape.width), data width \(set.width), head width \(head.width)")
        }
    }

    /// Parameter groups the optimizer updates: decay on the MLP matrices only.
    static func groups(_ s: ExitBlockShape, _ o: TrainingOptions) -> [AdamW.Group] {
        var groups = [AdamW.Group(range: s.norm, decay: 0), AdamW.Group(range: s.up, decay: o.weightDecay),
                      AdamW.Group(range: s.down, decay: o.weightDecay)]
        if s.hasAdapter && o.trainAdapter {
            groups += [AdamW.Group(range: s.adapterMatrix, decay: 0), AdamW.Group(range: s.adapterBias, decay: 0)]
        }
        return groups
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
