import CollabCore
import LLM

/// A trained transformer-layer exit block (issue 6, block (b)) of one or more layers, each with its own
/// KV cache, run as more layers of the engine: its f32 weights are quantized at load into one of the
/// engine's formats and go through the model's own layer code and kernels, so each layer costs about
/// one model layer (the f32 training pass costs about five). Observed rows wait until the exit is asked
/// (`applyLast`), then run through the block in one batch, so positions whose tokens exited lower
/// down cost nothing until this exit is consulted.
/// One sequence, one call at a time, like the edge model it serves.
public final class ExitLayer: SequenceExitTransform, @unchecked Sendable {
    /// How the block's rows are computed.
    public enum Execution: Sendable, Equatable {
        /// Packed into an engine format, run by the model's layer code (inference).
        case packed(GGMLType)
        /// The f32 training pass (`TransformerExitRunner`): the reference the packed block is checked
        /// against, and the cost it saves.
        case trainingPass
    }

    /// Q8_0 keeps the f32 block's decisions on held-out states (`PackedLayerBlockTests`); the model's
    /// own Q4_1 changed 22% of them and most top-1 tokens of a trained block, so it is not used.
    public static let defaultExecution = Execution.packed(.q8_0)

    public let block: StackedTransformerExitBlock
    public let execution: Execution
    /// One per layer of the block, applied in turn.
    private let layers: [LayerRunner]
    /// Observed rows not yet run through the block, from position `pendingStart`.
    private var pending: HiddenStates
    private var pendingStart = 0
    private var last: HiddenStates?

    /// The block beside `model`'s layers, as layer `index` of it (its RoPE base and kernels); the
    /// cache holds up to `capacity` positions (default: the model's context).
    public init(block: StackedTransformerExitBlock, beside model: LlamaModel, at index: Int,
                execution: Execution = defaultExecution, capacity: Int? = nil) throws {
        guard block.fits(model.config) else {
            throw CollabError(.invalidArgument, "exit layer block: its shape \(block.shape) does not match the model's layers")
        }
        self.block = block
        self.execution = execution
        layers = try block.layers.map { layer in
            switch execution {
            case let .packed(format):
                let engineLayer = try LlamaModel(layer: layer.decoderLayerWeights, at: min(max(index, 0), model.config.layerCount - 1),
                                                 format: format, beside: model)
                return .packed(engineLayer, engineLayer.makeCache(capacity: capacity))
            case .trainingPass:
                return .trainingPass(TransformerExitRunner(block: layer, pool: model.pool,
                                                           capacity: capacity ?? model.config.contextLength))
            }
        }
        pending = HiddenStates(rows: 0, width: block.shape.width)
    }

    /// A one-layer block.
    public convenience init(block: TransformerExitBlock, beside model: LlamaModel, at index: Int,
                            execution: Execution = defaultExecution, capacity: Int? = nil) throws {
        try self.init(block: try StackedTransformerExitBlock(layers: [block]), beside: model, at: index,
                      execution: execution, capacity: capacity)
    }

    /// Positions observed so far.
    public var observed: Int { pendingStart + pending.rows }

    /// The packed layers' matrices (the f32 training pass: all its parameters).
    public var weightBytes: Int { layers.reduce(0) { $0 + $1.weightBytes } }

    public func observe(_ hidden: HiddenStates, at position: Int) throws {
        guard hidden.width == block.shape.width else {
            throw CollabError(.invalidArgument, "exit layer block: rows of width \(hidden.width), block width \(block.shape.width)")
        }
        guard position >= 0, position <= observed else {
            throw CollabError(.invalidArgument, "exit layer block: rows at position \(position) after only \(observed) observed positions")
        }
        truncate(to: position)
        pending.append(hidden)
    }

    public func truncate(to positions: Int) {
        let keep = max(0, positions)
        guard keep < observed else { return }
        if keep >= pendingStart {
            pending = pending.rows(0..<(keep - pendingStart))
        } else {
            for layer in layers { layer.truncate(to: keep) }
            pending = HiddenStates(rows: 0, width: pending.width)
            pendingStart = keep
            last = nil  // its position is gone; the next observed row brings a new one
        }
    }

    public func applyLast() throws -> HiddenStates {
        if pending.rows > 0 {
            let z = try run(pending)
            last = z.rows(z.rows - 1..<z.rows)
            pendingStart += pending.rows
            pending = HiddenStates(rows: 0, width: pending.width)
        }
        guard let last else { throw CollabError(.invalidArgument, "exit layer block: no position observed yet") }
        return last
    }

    /// The block over `hidden` as a whole new sequence (positions 0, 1, ...): every row's output.
    /// Rows beyond the cache's capacity cannot be attended over: the rows come back unchanged
    /// (the logit lens) rather than failing the caller.
    public func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates {
        truncate(to: 0)
        pending = HiddenStates(rows: 0, width: hidden.width)
        pendingStart = 0
        last = nil
        guard let z = try? run(hidden) else { return hidden }
        pendingStart = hidden.rows
        last = z.rows(z.rows - 1..<z.rows)
        return z
    }

    /// The block over new rows at the cache's end, appending them to it.
    private func run(_ rows: HiddenStates) throws -> HiddenStates {
        var z = rows
        for layer in layers { try layer.apply(&z) }
        return z
    }
}

/// One layer of an exit layer block at inference, with its own KV cache.
private enum LayerRunner {
    /// Packed into an engine format and run by the model's layer code.
    case packed(LlamaModel, KVCache)
    case trainingPass(TransformerExitRunner)

    var weightBytes: Int {
        switch self {
        case let .packed(model, _): model.layerWeightBytes
        case let .trainingPass(runner): runner.block.parameters.count * MemoryLayout<Float>.size
        }
    }

    /// The layer over new rows at its cache's end, appending them to it.
    func apply(_ z: inout HiddenStates) throws {
        switch self {
        case let .packed(layer, cache): try layer.forward(&z, cache: cache)
        case let .trainingPass(runner): z = try runner.apply(z)
        }
    }

    func truncate(to positions: Int) {
        switch self {
        case let .packed(_, cache): cache.truncate(to: positions)
        case let .trainingPass(runner): runner.truncate(to: positions)
        }
    }
}
