/// How a set's rows are cut into batches: fixed-size runs of rows, or (for blocks that attend)
/// consecutive whole sequences packed up to the batch size (a longer sequence is a batch alone).
struct BatchPlan {
    struct Batch {
        let rows: Range<Int>
        /// The batch's sequences, relative to its first row.
        let segments: [Range<Int>]
    }

    let batches: [Batch]
    /// The most rows of any batch.
    let capacity: Int

    init(rows: Int, batchSize: Int, sequences: [Range<Int>]?) {
        let size = max(1, batchSize)
        var batches: [Batch] = []
        if let sequences {
            var current: [Range<Int>] = []
            func flush() {
                guard let first = current.first?.lowerBound, let last = current.last?.upperBound else { return }
                batches.append(Batch(rows: first..<last, segments: current.map { ($0.lowerBound - first)..<($0.upperBound - first) }))
                current = []
            }
            for s in sequences {
                if let first = current.first?.lowerBound, s.upperBound - first > size { flush() }
                current.append(s)
            }
            flush()
        } else {
            for first in stride(from: 0, to: rows, by: size) {
                let n = min(size, rows - first)
                batches.append(Batch(rows: first..<first + n, segments: [0..<n]))
            }
        }
        self.batches = batches
        capacity = batches.map(\.rows.count).max() ?? 1
    }
}
