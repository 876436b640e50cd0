import LLM

/// Runs a trained transformer exit block at inference time with its own KV cache: rows are
/// appended at consecutive positions, as the edge produces the exit layer's states. The block must
/// see every position of the sequence (also tokens that did not exit here) to keep its cache whole.
/// Not thread-safe: one call at a time.
public final class TransformerExitRunner: @unchecked Sendable {
    public let block: TransformerExitBlock
    public let pool: ThreadPool
    public let capacity: Int
    /// Positions held in the cache (the next row's position).
    public private(set) var position = 0
    private let keys: FloatBuffer
    private let values: FloatBuffer
    private var pass: TransformerPass

    public init(block: TransformerExitBlock, pool: ThreadPool, capacity: Int) {
        self.block = block
        self.pool = pool
        self.capacity = capacity
        keys = FloatBuffer(capacity * block.shape.kvDim)
        values = FloatBuffer(capacity * block.shape.kvDim)
        pass = TransformerPass(shape: block.shape, rows: 1)
    }

    /// Forgets the sequence (the next row is position 0).
    public func reset() { position = 0 }

    /// Drops positions from `count` on (e.g. to rewind a sequence).
    public func truncate(to count: Int) { position = min(position, max(0, count)) }

    /// z for new rows at positions position ..< position + rows, appended to the cache.
    public func apply(_ hidden: HiddenStates) throws -> HiddenStates {
        let s = block.shape
        let n = hidden.rows
        guard hidden.width == s.width else {
            throw TrainingError.shapeMismatch("hidden width \(hidden.width), block width \(s.width)")
        }
        guard position + n <= capacity else {
            throw TrainingError.shapeMismatch("exit block cache holds \(capacity) positions, \(position + n) needed")
        }
        if n > pass.capacity { pass = TransformerPass(shape: s, rows: max(n, 2 * pass.capacity)) }
        let (pass, pos0, kvd, w) = (self.pass, position, s.kvDim, s.qkvWidth)
        let (k, v) = (keys.pointer, values.pointer)
        let z = block.parameters.withUnsafeBufferPointer { p in
            hidden.values.withUnsafeBufferPointer { h in
                pass.forward(parameters: p.baseAddress!, hidden: h.baseAddress!, rows: n, positions: [(0..<n, pos0)],
                             pool: pool) { qkv in
                    for r in 0..<n {
                        (k + (pos0 + r) * kvd).update(from: qkv + r * w + s.queryDim, count: kvd)
                        (v + (pos0 + r) * kvd).update(from: qkv + r * w + s.queryDim + kvd, count: kvd)
                    }
                    return [TransformerPass.Attention(rows: 0..<n, pos0: pos0, keys: k, values: v, stride: kvd)]
                }
                return Array(UnsafeBufferPointer(start: pass.z, count: n * s.width))
            }
        }
        position += n
        return HiddenStates(values: z, width: s.width)
    }
}
