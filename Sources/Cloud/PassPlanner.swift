/// Splits one forward pass's row budget between waiting works (continuous batching with chunked
/// catch-ups, as llama-server and vLLM chunk prefills): works come least recently served first;
/// a work whose rows fit is served whole; a longer one gets a chunk that stops short of its scored
/// rows, at most half of what is left while others wait, so a 2,000-row prompt never holds up the
/// other sessions' next tokens for more than its share of a pass, nor makes a pass much longer than
/// the engine's pass-time target.
public enum PassPlanner {
    public struct Demand: Equatable, Sendable {
        public var remaining: Int
        public var scored: Int
        public init(remaining: Int, scored: Int) {
            self.remaining = remaining
            self.scored = scored
        }
    }

    public struct Slice: Equatable, Sendable {
        /// Index into the demands.
        public var index: Int
        public var rows: Int
        /// True when the slice completes the work (its scored rows are in it).
        public var final: Bool
    }

    /// Chunks smaller than this are not worth a slice while other work waits.
    public static let minimumChunk = 8

    /// `demands` in priority order. Always serves at least the first demand, even over budget when its
    /// scored rows alone exceed it. No partial chunk exceeds `chunkLimit` rows: the engine adapts it
    /// to the measured pass time, so that no pass of a long work (alone or shared) keeps the next
    /// arrivals waiting much longer than the pass-time target.
    public static func plan(_ demands: [Demand], budget: Int, chunkLimit: Int = .max) -> [Slice] {
        var left = budget
        var slices: [Slice] = []
        for (index, demand) in demands.enumerated() where demand.remaining > 0 {
            if left <= 0 { break }
            if demand.remaining <= left {
                slices.append(Slice(index: index, rows: demand.remaining, final: true))
                left -= demand.remaining
                continue
            }
            let othersWait = index + 1 < demands.count
            let cap = othersWait ? max(left / 2, min(left, minimumChunk)) : left
            let limit = max(chunkLimit, 1)
            let chunk = min(cap, demand.remaining - demand.scored, limit)
            if chunk > 0, chunk >= min(minimumChunk, demand.remaining - demand.scored, limit) || slices.isEmpty {
                slices.append(Slice(index: index, rows: chunk, final: false))
                left -= chunk
            } else if slices.isEmpty {
                slices.append(Slice(index: index, rows: demand.remaining, final: true))
                left -= demand.remaining
            }
        }
        return slices
    }
}
