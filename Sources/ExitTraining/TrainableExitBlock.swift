import Exits
import LLM

/// What the trainer needs from a kind of exit block: its flat parameters, a pass that computes
/// z and the parameter gradient over a batch, and which parameters the optimizer updates.
protocol TrainableExitBlock: Sendable, Equatable {
    associatedtype Pass: ExitBlockPass
    var parameters: [Float] { get set }
    var width: Int { get }
    /// Whether a batch must hold whole sequences in order (the block attends over positions).
    static var attendsOverSequences: Bool { get }
    func makePass(rows: Int) -> Pass
    func optimizerGroups(_ options: TrainingOptions) -> [AdamW.Group]
}

/// Forward (keeping activations) and backward of one block kind over a batch.
protocol ExitBlockPass: AnyObject {
    /// The block's output of the last forward (rows x width).
    var z: UnsafeMutablePointer<Float> { get }
    /// `segments`: the batch's sequences (row ranges covering 0..<rows in order).
    func forward(parameters: UnsafePointer<Float>, hidden: UnsafePointer<Float>, segments: [Range<Int>], pool: ThreadPool)
    /// Overwrites `gradient` with d loss / d parameters given dz for the last forward's rows.
    func backward(parameters: UnsafePointer<Float>, hidden: UnsafePointer<Float>, dz: UnsafePointer<Float>, rows: Int,
                  gradient: UnsafeMutablePointer<Float>, pool: ThreadPool)
}

extension BlockPass: ExitBlockPass {
    func forward(parameters: UnsafePointer<Float>, hidden: UnsafePointer<Float>, segments: [Range<Int>], pool: ThreadPool) {
        forward(parameters: parameters, hidden: hidden, rows: segments.last?.upperBound ?? 0, pool: pool)
    }
}

extension TransformerPass: ExitBlockPass {
    func backward(parameters: UnsafePointer<Float>, hidden: UnsafePointer<Float>, dz: UnsafePointer<Float>, rows: Int,
                  gradient: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        backward(parameters: parameters, hidden: hidden, dz: dz, rows: rows, gradient: gradient, inputGradient: nil, pool: pool)
    }
}

extension ExitBlock: TrainableExitBlock {
    var width: Int { shape.width }
    static var attendsOverSequences: Bool { false }
    func makePass(rows: Int) -> BlockPass { BlockPass(shape: shape, rows: rows) }

    /// Decay on the MLP matrices only; the adapter trains only when asked.
    func optimizerGroups(_ o: TrainingOptions) -> [AdamW.Group] {
        var groups = [AdamW.Group(range: shape.norm, decay: 0), AdamW.Group(range: shape.up, decay: o.weightDecay),
                      AdamW.Group(range: shape.down, decay: o.weightDecay)]
        if shape.hasAdapter && o.trainAdapter {
            groups += [AdamW.Group(range: shape.adapterMatrix, decay: 0), AdamW.Group(range: shape.adapterBias, decay: 0)]
        }
        return groups
    }
}

extension TransformerExitBlock: TrainableExitBlock {
    var width: Int { shape.width }
    static var attendsOverSequences: Bool { true }
    func makePass(rows: Int) -> TransformerPass { TransformerPass(shape: shape, rows: rows) }

    func optimizerGroups(_ o: TrainingOptions) -> [AdamW.Group] { Self.groups(shape, o) }

    /// Decay on the matrices, none on the norms.
    static func groups(_ shape: TransformerExitShape, _ o: TrainingOptions) -> [AdamW.Group] {
        [AdamW.Group(range: shape.attentionNorm, decay: 0), AdamW.Group(range: shape.qkv, decay: o.weightDecay),
         AdamW.Group(range: shape.output, decay: o.weightDecay), AdamW.Group(range: shape.ffnNorm, decay: 0),
         AdamW.Group(range: shape.gateUp, decay: o.weightDecay), AdamW.Group(range: shape.down, decay: o.weightDecay)]
    }
}

extension StackedTransformerExitBlock: TrainableExitBlock {
    var width: Int { shape.width }
    static var attendsOverSequences: Bool { true }
    func makePass(rows: Int) -> StackedTransformerPass { StackedTransformerPass(shape: shape, depth: depth, rows: rows) }

    /// Each layer's groups, as for one layer block, at that layer's offset.
    func optimizerGroups(_ o: TrainingOptions) -> [AdamW.Group] {
        let one = TransformerExitBlock.groups(shape, o)
        return (0..<depth).flatMap { i in
            one.map { AdamW.Group(range: ($0.range.lowerBound + i * shape.parameterCount)..<($0.range.upperBound + i * shape.parameterCount),
                                  decay: $0.decay) }
        }
    }
}

extension StackedTransformerPass: ExitBlockPass {}
