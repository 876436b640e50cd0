import Exits
import LLM

/// Measuring a block without training it: loss, agreement and confidences on a set, and the
/// loss gradient (for gradient checks and custom loops).
extension ExitBlockTrainer {
    /// Loss, agreement and per-row predictions of `block` on `set`.
    public func evaluate(_ block: ExitBlock, on set: DistillationSet, loss: LossOptions = LossOptions(),
                         batchSize: Int = 64) throws -> Evaluation {
        try measure(block, set, loss, batchSize)
    }

    public func evaluate(_ block: TransformerExitBlock, on set: DistillationSet, loss: LossOptions = LossOptions(),
                         batchSize: Int = 256) throws -> Evaluation {
        try measure(try StackedTransformerExitBlock(layers: [block]), set, loss, batchSize)
    }

    /// The mean loss over all rows of `set` (one batch) and its gradient in the flat parameter
    /// layout. For gradient checks and small custom loops.
    public func lossAndGradient(_ block: ExitBlock, on set: DistillationSet,
                                loss: LossOptions = LossOptions()) throws -> (loss: Double, gradient: [Float]) {
        try gradient(block, set, loss)
    }

    public func lossAndGradient(_ block: TransformerExitBlock, on set: DistillationSet,
                                loss: LossOptions = LossOptions()) throws -> (loss: Double, gradient: [Float]) {
        try gradient(try StackedTransformerExitBlock(layers: [block]), set, loss)
    }

    public func lossAndGradient(_ block: StackedTransformerExitBlock, on set: DistillationSet,
                                loss: LossOptions = LossOptions()) throws -> (loss: Double, gradient: [Float]) {
        try gradient(block, set, loss)
    }

    // MARK: - Shared by both block kinds

    func measure<B: TrainableExitBlock>(_ block: B, _ set: DistillationSet, _ loss: LossOptions,
                                               _ batchSize: Int) throws -> Evaluation {
        try check(block.width, set)
        let plan = BatchPlan(rows: set.rows, batchSize: batchSize, sequences: B.attendsOverSequences ? try attentionSequences(set) : nil)
        let blockPass = block.makePass(rows: plan.capacity)
        let headPass = HeadPass(head: head, rows: plan.capacity)
        var predictions = [Int32]()
        var confidences = [Float]()
        predictions.reserveCapacity(set.rows)
        confidences.reserveCapacity(set.rows)
        var lossSum = 0.0, klSum = 0.0
        var agree = 0
        for batch in plan.batches {
            let (first, n) = (batch.rows.lowerBound, batch.rows.count)
            let out = block.parameters.withUnsafeBufferPointer { p in
                set.hidden.withUnsafeBufferPointer { h in
                    blockPass.forward(parameters: p.baseAddress!, hidden: h.baseAddress! + first * set.width,
                                      segments: batch.segments, pool: pool)
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

    func gradient<B: TrainableExitBlock>(_ block: B, _ set: DistillationSet,
                                                _ loss: LossOptions) throws -> (loss: Double, gradient: [Float]) {
        try check(block.width, set)
        let n = set.rows
        let segments = B.attendsOverSequences ? try attentionSequences(set) : [0..<n]
        let blockPass = block.makePass(rows: n)
        let headPass = HeadPass(head: head, rows: n)
        var gradient = [Float](repeating: 0, count: block.parameters.count)
        let total = block.parameters.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer { g in
                set.hidden.withUnsafeBufferPointer { h in
                    blockPass.forward(parameters: p.baseAddress!, hidden: h.baseAddress!, segments: segments, pool: pool)
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
}
