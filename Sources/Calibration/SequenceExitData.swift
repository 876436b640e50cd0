import ExitTraining
import Exits
import LLM

/// Whole-sequence training data for exit blocks that attend over the sequence (issue 6, block
/// (b)): the dataset records only answer positions, so the full model re-runs each sequence's
/// tokens (prompt included) and keeps every position's state at the exit layer and its teacher.
struct SequenceExitData {
    /// Every position of the chosen sequences, one run after another (positions 0, 1, ...).
    let set: DistillationSet
    /// Row of `set` where each sequence (by dataset sequence id) starts.
    let start: [Int: Int]

    /// The sequences that dataset rows `rows` belong to, at exit `layer`.
    init(model: LlamaModel, data: ExitDataset, layer: Int, rows: [Int], topK: Int) throws {
        var set = DistillationSet(width: data.width, topK: topK)
        var start: [Int: Int] = [:]
        for id in Set(rows.map { Int(data.sequence[$0]) }).sorted() {
            start[id] = set.rows
            let tokens = data.sequences[id].map(Int.init)
            try set.append(DistillationSet.collect(model: model, tokens: tokens, exitLayer: layer, topK: topK))
        }
        self.set = set
        self.start = start
    }

    /// The block's outputs at dataset rows `rows` (in that order): each sequence runs through the
    /// block from position 0 with a fresh cache, as the edge runs it.
    func outputs(of blocks: [TransformerExitBlock], at rows: [Int], data: ExitDataset, pool: ThreadPool) throws -> HiddenStates {
        let sequences = try set.sequences()
        let longest = sequences.map(\.count).max() ?? 1
        let runners = blocks.map { TransformerExitRunner(block: $0, pool: pool, capacity: longest) }
        // z row r belongs to row r of `set` (sequences run back to back, as stored).
        var z: [Float] = []
        z.reserveCapacity(set.hidden.count)
        for range in sequences {
            var states = HiddenStates(values: Array(set.hidden[range.lowerBound * set.width..<range.upperBound * set.width]),
                                      width: set.width)
            for runner in runners {
                runner.reset()
                states = try runner.apply(states)
            }
            z += states.values
        }
        let w = set.width
        return HiddenStates(values: rows.flatMap { row -> ArraySlice<Float> in
            let r = start[Int(data.sequence[row])]! + Int(data.position[row])
            return z[r * w..<(r + 1) * w]
        }, width: w)
    }
}
