import Foundation

/// One candidate token during sampling.
@usableFromInline
struct SamplingCandidate: Sendable {
    @usableFromInline var id: Int32
    @usableFromInline var logit: Float

    @inlinable init(id: Int32, logit: Float) {
        self.id = id
        self.logit = logit
    }

    /// Descending logit, ties broken by the lower id (the order every filter uses).
    @inlinable static func ranksBefore(_ a: SamplingCandidate, _ b: SamplingCandidate) -> Bool {
        a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
    }
}

/// Chooses the next token from logits, reproducibly for a given seed.
///
/// Order (llama.cpp's default chain): repetition penalty over the last `repeatLastN` history tokens, top-k, top-p,
/// min-p, temperature, then a draw from the softmax of what is left. `temperature == 0` (or `topK == 1`) is greedy:
/// argmax after the penalty, ties to the lowest id. As in llama.cpp, top-p and min-p look at the
/// temperature-1 distribution; temperature only shapes the final draw.
///
/// Cost for a 49k vocabulary: greedy is one pass; top-k uses a size-k heap (no full sort); top-p without top-k
/// partially sorts a growing prefix until it covers the nucleus; min-p alone and plain temperature need no sort.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: Xoshiro256StarStar
    private var scratch: [Float] = []

    /// With `parameters.seed == nil` the generator is seeded from system entropy.
    public init(parameters: SamplingParameters = .greedy) {
        self.parameters = parameters
        if let seed = parameters.seed {
            rng = Xoshiro256StarStar(seed: seed)
        } else {
            rng = Xoshiro256StarStar()
        }
    }

    public mutating func sample(logits: [Float], history: [Int] = []) -> Int {
        logits.withUnsafeBufferPointer { sample(logits: $0, history: history) }
    }

    public mutating func sample(logits: UnsafeBufferPointer<Float>, history: [Int] = []) -> Int {
        precondition(!logits.isEmpty, "Sampler.sample: empty logits")
        let p = parameters
        guard p.repetitionPenalty != 1, p.repeatLastN != 0, !history.isEmpty else {
            return choose(from: logits)
        }
        // Penalise a copy; the scratch buffer is reused across calls (moved out so it stays uniquely referenced).
        var buffer = scratch
        scratch = []
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: logits)
        Sampler.applyRepetitionPenalty(
            to: &buffer, history: history, penalty: p.repetitionPenalty, lastN: p.repeatLastN)
        let id = buffer.withUnsafeBufferPointer { choose(from: $0) }
        scratch = buffer
        return id
    }

    /// llama.cpp's repetition penalty: every distinct token among the last `lastN` history entries (all of them when
    /// `lastN == -1`) has its logit divided by `penalty` when positive, multiplied when <= 0.
    public static func applyRepetitionPenalty(to logits: inout [Float], history: [Int], penalty: Float, lastN: Int) {
        guard penalty != 1, lastN != 0, !history.isEmpty else { return }
        let window = lastN < 0 ? history[...] : history.suffix(lastN)
        var seen = Set<Int>(minimumCapacity: window.count)
        for id in window where id >= 0 && id < logits.count && seen.insert(id).inserted {
            let l = logits[id]
            logits[id] = l <= 0 ? l * penalty : l / penalty
        }
    }

    /// Index of the largest logit; ties go to the lowest id; NaNs are ignored (all-NaN gives 0).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        var found = false
        for i in 0..<logits.count {
            let v = logits[i]
            if v.isNaN { continue }
            if !found || v > bestValue {
                best = i
                bestValue = v
                found = true
            }
        }
        return best
    }

    public static func argmax(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { argmax($0) }
    }

    // MARK: - The chain after the penalty

    private mutating func choose(from logits: UnsafeBufferPointer<Float>) -> Int {
        let p = parameters
        if p.isGreedy { return Sampler.argmax(logits) }
        let n = logits.count

        var candidates: [SamplingCandidate]
        var isSorted: Bool
        // Softmax normaliser (sum of exp(l - max) at temperature 1) over the full current candidate set,
        // needed by top-p when `candidates` holds only a sorted prefix of the vocabulary.
        var total: Double? = nil
        if p.topK > 0 && p.topK < n {
            candidates = selectTop(logits, k: p.topK)
            isSorted = true
        } else if p.topP < 1 {
            let (maxLogit, sum) = Sampler.maxAndExpSum(logits)
            guard maxLogit.isFinite else { return Sampler.argmax(logits) }
            total = sum
            candidates = Sampler.nucleusPrefix(logits, topP: p.topP, maxLogit: maxLogit, total: sum)
            isSorted = true
        } else {
            // Every token (min-p applied while collecting: with top-k and top-p off it is the first filter).
            var threshold = -Float.infinity
            if p.minP > 0 {
                var m = -Float.infinity
                for i in 0..<n where logits[i] > m { m = logits[i] }
                threshold = m + Foundation.log(p.minP)
            }
            candidates = []
            candidates.reserveCapacity(p.minP > 0 ? 256 : n)
            for i in 0..<n {
                let v = logits[i]
                if v >= threshold { candidates.append(SamplingCandidate(id: Int32(i), logit: v)) }
            }
            if candidates.isEmpty { return Sampler.argmax(logits) }
            isSorted = false
        }
        guard let first = candidates.first, first.logit.isFinite || !isSorted else {
            return Sampler.argmax(logits)
        }

        if p.topP < 1 {
            // Sorted here: both branches that can reach this point with topP < 1 produce sorted candidates.
            let maxLogit = first.logit
            let sum = total ?? candidates.reduce(0.0) { $0 + Double(Foundation.exp($1.logit - maxLogit)) }
            var cumulative = 0.0
            var keep = candidates.count
            for (i, c) in candidates.enumerated() {
                cumulative += Double(Foundation.exp(c.logit - maxLogit)) / sum
                if cumulative >= Double(p.topP) {
                    keep = i + 1
                    break
                }
            }
            candidates.removeSubrange(keep...)
        }

        if p.minP > 0 && isSorted {
            let threshold = first.logit + Foundation.log(p.minP)
            var keep = candidates.count
            for (i, c) in candidates.enumerated() where c.logit < threshold {
                keep = max(i, 1)
                break
            }
            candidates.removeSubrange(keep...)
        }

        return draw(from: candidates, temperature: p.temperature)
    }

    /// Softmax at `temperature` over the candidates, then one draw.
    private mutating func draw(from candidates: [SamplingCandidate], temperature: Float) -> Int {
        if candidates.count == 1 { return Int(candidates[0].id) }
        var maxLogit = -Float.infinity
        for c in candidates where c.logit > maxLogit { maxLogit = c.logit }
        guard maxLogit.isFinite else { return Int(candidates.min(by: { $0.id < $1.id })!.id) }
        let invT = 1 / temperature
        var weights = [Double](repeating: 0, count: candidates.count)
        var sum = 0.0
        for (i, c) in candidates.enumerated() {
            let w = Double(Foundation.exp((c.logit - maxLogit) * invT))
            weights[i] = w
            sum += w
        }
        let target = rng.nextUnitDouble() * sum
        var cumulative = 0.0
        for (i, w) in weights.enumerated() {
            cumulative += w
            if target < cumulative { return Int(candidates[i].id) }
        }
        // Rounding: return the last candidate with non-zero weight.
        for i in stride(from: candidates.count - 1, through: 0, by: -1) where weights[i] > 0 {
            return Int(candidates[i].id)
        }
        return Int(candidates[0].id)
    }

    /// Max logit and sum of exp(l - max) over all non-NaN logits.
    static func maxAndExpSum(_ logits: UnsafeBufferPointer<Float>) -> (Float, Double) {
        var m = -Float.infinity
        for i in 0..<logits.count where logits[i] > m { m = logits[i] }
        guard m.isFinite else { return (m, 0) }
        var sum: Float = 0
        var total = 0.0
        // Accumulate in blocks of Float, flush to Double: fast and accurate enough for 10^5 terms.
        var i = 0
        while i < logits.count {
            let end = Swift.min(i + 256, logits.count)
            sum = 0
            while i < end {
                let v = logits[i]
                if !v.isNaN { sum += Foundation.exp(v - m) }
                i += 1
            }
            total += Double(sum)
        }
        return (m, total)
    }

    /// A sorted prefix of the vocabulary whose probability mass reaches `topP` (grows 128, 1024, 8192, ... tokens).
    static func nucleusPrefix(
        _ logits: UnsafeBufferPointer<Float>, topP: Float, maxLogit: Float, total: Double
    ) -> [SamplingCandidate] {
        let n = logits.count
        var k = Swift.min(n, 128)
        while true {
            let prefix = selectTop(logits, k: k)
            if k == n { return prefix }
            var mass = 0.0
            for c in prefix { mass += Double(Foundation.exp(c.logit - maxLogit)) }
            if mass / total >= Double(topP) { return prefix }
            k = Swift.min(n, k * 8)
        }
    }
}

/// The `k` best candidates (descending logit, ties to the lower id), NaN treated as -infinity.
/// A size-k min-heap over one pass: O(n log k), no full sort unless k is a large share of n.
@usableFromInline
func selectTop(_ logits: UnsafeBufferPointer<Float>, k requested: Int) -> [SamplingCandidate] {
    let n = logits.count
    let k = Swift.max(0, Swift.min(requested, n))
    if k == 0 { return [] }
    if k * 4 >= n {
        var all = [SamplingCandidate]()
        all.reserveCapacity(n)
        for i in 0..<n {
            let v = logits[i]
            all.append(SamplingCandidate(id: Int32(i), logit: v.isNaN ? -Float.infinity : v))
        }
        all.sort(by: SamplingCandidate.ranksBefore)
        if k < n { all.removeSubrange(k...) }
        return all
    }
    // Min-heap by rank: the root is the worst kept candidate.
    var heap = [SamplingCandidate]()
    heap.reserveCapacity(k)
    @inline(__always) func worse(_ a: SamplingCandidate, _ b: SamplingCandidate) -> Bool {
        SamplingCandidate.ranksBefore(b, a)
    }
    for i in 0..<k {
        let v = logits[i]
        heap.append(SamplingCandidate(id: Int32(i), logit: v.isNaN ? -Float.infinity : v))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if worse(heap[child], heap[parent]) {
                heap.swapAt(child, parent)
                child = parent
            } else {
                break
            }
        }
    }
    var rootLogit = heap[0].logit
    var i = k
    while i < n {
        let v = logits[i]
        // Ids increase during the scan, so an equal logit never beats the root: strict comparison suffices.
        if v > rootLogit {
            heap[0] = SamplingCandidate(id: Int32(i), logit: v)
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= k { break }
                var child = left
                let right = left + 1
                if right < k && worse(heap[right], heap[left]) { child = right }
                if worse(heap[child], heap[parent]) {
                    heap.swapAt(child, parent)
                    parent = child
                } else {
                    break
                }
            }
            rootLogit = heap[0].logit
        }
        i += 1
    }
    heap.sort(by: SamplingCandidate.ranksBefore)
    return heap
}
