import LLM

/// Runs the edge layers [0, s) in segments between checkpoints (exit layers, then s), keeping the
/// rows whose upper layers were skipped by an early exit, and computing them together with the
/// next token's rows (docs/ARCHITECTURE.md section 2, deferred layers). Every KV entry ends up exactly as if each token
/// had run every layer; the emitted token only waited for the layers up to its exit.
///
/// Invariant: deferred rows are ordered by position with non-increasing depth, so the rows at a
/// checkpoint's depth always sit right before the rows arriving there.
final class DeferredLayers {
    let model: LlamaModel
    let checkpoints: [Int]
    let cache: KVCache
    /// Rows stopped at a checkpoint below s: (depth, first position, rows).
    private(set) var deferred: [(depth: Int, position: Int, rows: HiddenStates)] = []

    init(model: LlamaModel, exitLayers: [Int], cache: KVCache) {
        self.model = model
        self.cache = cache
        let s = model.layers.upperBound
        checkpoints = Array(Set(exitLayers.filter { $0 > 0 && $0 < s })).sorted() + [s]
    }

    var split: Int { model.layers.upperBound }

    /// Positions whose rows have been embedded (computed at least to the first checkpoint, or deferred).
    var positions: Int { cache.count(layer: 0) }

    /// Advances new rows (embedded tokens, positions `positions...`) checkpoint by checkpoint.
    /// `stop(layer, position, hidden)` is asked at every checkpoint below s with the batch's rows
    /// (the first at `position`); every position reaches each checkpoint in exactly one such batch,
    /// in order. Returning true leaves the batch deferred at that depth. Returns the rows that
    /// reached s (with their first position), or nil if stopped early.
    func advance(_ rows: HiddenStates, stop: (Int, Int, HiddenStates) throws -> Bool) throws -> (position: Int, rows: HiddenStates)? {
        var batch = rows
        var position = positions
        var depth = 0
        for checkpoint in checkpoints {
            // Rows deferred at this depth join the batch (they precede it).
            if let last = deferred.last, last.depth == depth {
                deferred.removeLast()
                var joined = last.rows
                joined.append(batch)
                batch = joined
                position = last.position
            }
            try model.forward(&batch, batch: [BatchSegment(cache: cache, position: position, count: batch.rows)],
                              only: depth..<checkpoint)
            depth = checkpoint
            if checkpoint < split, try stop(checkpoint, position, batch) {
                if let last = deferred.last, last.depth == depth {
                    // Same depth as the rows before it: keep one contiguous block.
                    deferred.removeLast()
                    var joined = last.rows
                    joined.append(batch)
                    deferred.append((depth, last.position, joined))
                } else {
                    deferred.append((depth, position, batch))
                }
                return nil
            }
        }
        return (position, batch)
    }
}
