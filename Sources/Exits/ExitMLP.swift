import LLM

/// A trained residual MLP exit block (z = A h + b + W2 silu(W1 norm(h))), run with reused buffers.
/// One call at a time, like the edge model it serves.
public final class ExitMLP: ExitTransform, @unchecked Sendable {
    public let block: ExitBlock
    private var runner: ExitBlockRunner?

    public init(block: ExitBlock) { self.block = block }

    /// The block runs in f32.
    public var weightBytes: Int { block.parameters.count * MemoryLayout<Float>.size }

    public func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates {
        if runner == nil || runner!.pool !== pool { runner = ExitBlockRunner(block: block, pool: pool) }
        return runner!.apply(hidden)
    }
}
