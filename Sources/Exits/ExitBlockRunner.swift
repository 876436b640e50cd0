import LLM

/// Runs a trained exit block at inference time, keeping its activation buffers between calls
/// (the edge evaluates an exit once per token, where allocating per call would show).
/// Not thread-safe: one call at a time.
public final class ExitBlockRunner: @unchecked Sendable {
    public let block: ExitBlock
    public let pool: ThreadPool
    private var pass: BlockPass

    public init(block: ExitBlock, pool: ThreadPool) {
        self.block = block
        self.pool = pool
        pass = BlockPass(shape: block.shape, rows: 1)
    }

    /// z = block(h) for each row, to feed the model's final norm and head.
    public func apply(_ hidden: HiddenStates) -> HiddenStates {
        precondition(hidden.width == block.shape.width, "hidden width \(hidden.width), block width \(block.shape.width)")
        let rows = hidden.rows
        if rows > pass.capacity { pass = BlockPass(shape: block.shape, rows: max(rows, 2 * pass.capacity)) }
        let pass = self.pass
        let values = block.parameters.withUnsafeBufferPointer { p in
            hidden.values.withUnsafeBufferPointer { h in
                pass.forward(parameters: p.baseAddress!, hidden: h.baseAddress!, rows: rows, pool: pool)
                return Array(UnsafeBufferPointer(start: pass.z, count: rows * block.shape.width))
            }
        }
        return HiddenStates(values: values, width: hidden.width)
    }
}
