import CollabCore
import LLM

/// A trained transformer-layer exit block (issue 6, block (b)) with its own KV cache. Observed rows
/// wait until the exit is asked (`applyLast`), then run through the block in one batch, so positions
/// whose tokens exited lower down cost nothing until this exit is consulted.
/// One sequence, one call at a time, like the edge model it serves.
public final class ExitLayer: SequenceExitTransform, @unchecked Sendable {
    public let block: TransformerExitBlock
    private let runner: TransformerExitRunner
    /// Observed rows not yet run through the block, from position `pendingStart`.
    private var pending: HiddenStates
    private var pendingStart = 0
    private var last: HiddenStates?

    public init(block: TransformerExitBlock, capacity: Int, pool: ThreadPool) {
        self.block = block
        runner = TransformerExitRunner(block: block, pool: pool, capacity: capacity)
        pending = HiddenStates(rows: 0, width: block.shape.width)
    }

    /// Positions observed so far.
    public var observed: Int { pendingStart + pending.rows }

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
            runner.truncate(to: keep)
            pending = HiddenStates(rows: 0, width: pending.width)
            pendingStart = keep
            last = nil  // its position is gone; the next observed row brings a new one
        }
    }

    public func applyLast() throws -> HiddenStates {
        if pending.rows > 0 {
            let z = try runner.apply(pending)
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
        runner.reset()
        pending = HiddenStates(rows: 0, width: hidden.width)
        pendingStart = 0
        last = nil
        guard let z = try? runner.apply(hidden) else { return hidden }
        pendingStart = hidden.rows
        last = z.rows(z.rows - 1..<z.rows)
        return z
    }
}
