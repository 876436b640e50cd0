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

extension StackedTransformerExitBlock: TrainableExitBlock {
    var width: Int { shape.width }
    static var attendsOverSequences: Bool { true }
    func makePass(rows: Int) -> StackedTransformerPass { StackedTransformerPass(shape: shape, depth: depth, rows: rows) }

    /// Per layer: decay on the matrices, none on the norms.
    func optimizerGroups(_ o: TrainingOptions) -> [AdamW.Group] {
        let s = shape
        let one = [(s.attentionNorm, Float(0)), (s.qkv, o.weightDecay), (s.output, o.weightDecay), (s.ffnNorm, 0),
                   (s.gateUp, o.weightDecay), (s.down, o.weightDecay)]
        return (0..<depth).flatMap { i in
            let offset = i * s.parameterCount
            return one.map { range, decay in AdamW.Group(range: (range.lowerBound + offset)..<(range.upperBound + offset), decay: decay) }
        }
    }
}

extension StackedTransformerPass: ExitBlockPass {}
