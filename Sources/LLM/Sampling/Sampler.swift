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
/// finds the nucleus with a logit histogram and sorts only one bucket; min-p alone and temperature need no sort.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: Xoshiro256StarStar
    private var scratch: [Float] = []
    private var weightScratch: [Float] = []

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
        let m = vectorMax(logits)  // one vectorised pass, then find its first occurrence
        guard let base = logits.baseAddress else { return 0 }
        for i in 0..<logits.count where base[i] == m { return i }
        return 0
    }

    public static func argmax(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { argmax($0) }
    }

    // MARK: - The chain after the penalty

    private mutating func choose(from logits: UnsafeBufferPointer<Float>) -> Int {
        let p = parameters
        if p.isGreedy { return Sampler.argmax(logits) }
        let n = logits.count
        if (p.topK == 0 || p.topK >= n) && p.topP >= 1 && p.minP == 0 {
            return drawFromAll(logits, temperature: p.temperature)
        }

        var candidates: [SamplingCandidate]
        var topPApplied = false
        if p.topK > 0 && p.topK < n {
            candidates = selectTop(logits, k: p.topK)  // sorted, best first
            guard candidates[0].logit.isFinite else { return Sampler.argmax(logits) }
        } else if p.topP < 1 {
            // Top-p over the whole vocabulary without sorting it (bucketed threshold search).
            candidates = Sampler.nucleus(logits, topP: p.topP)
            if candidates.isEmpty { return Sampler.argmax(logits) }
            topPApplied = true
        } else {
            // Every token (min-p applied while collecting: with top-k and top-p off it is the first filter).
            var threshold = -Float.infinity
            if p.minP > 0 {
                threshold = vectorMax(logits) + Foundation.log(p.minP)
            }
            candidates = []
            candidates.reserveCapacity(p.minP > 0 ? 256 : n)
            for i in 0..<n {
                let v = logits[i]
                if v >= threshold { candidates.append(SamplingCandidate(id: Int32(i), logit: v)) }
            }
            if candidates.isEmpty { return Sampler.argmax(logits) }
        }

        if p.topP < 1 && !topPApplied {
            // Candidates are sorted here (top-k output): keep the shortest prefix whose mass reaches top-p.
            let maxLogit = candidates[0].logit
            var sum = 0.0
            for c in candidates { sum += Double(Foundation.exp(c.logit - maxLogit)) }
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

        if p.minP > 0 {
            var maxLogit = -Float.infinity
            for c in candidates where c.logit > maxLogit { maxLogit = c.logit }
            let threshold = maxLogit + Foundation.log(p.minP)
            candidates.removeAll { $0.logit < threshold }  // the best candidate always survives
        }

        return draw(from: candidates, temperature: p.temperature)
    }

    /// No filter: a draw from softmax(logits / temperature) over the whole vocabulary, without building candidates.
    private mutating func drawFromAll(_ logits: UnsafeBufferPointer<Float>, temperature: Float) -> Int {
        let m = vectorMax(logits)
        guard m.isFinite else { return Sampler.argmax(logits) }
        let n = logits.count
        var weights = weightScratch
        weightScratch = []
        if weights.count < n { weights = [Float](repeating: 0, count: n) }
        defer { weightScratch = weights }
        return weights.withUnsafeMutableBufferPointer { w -> Int in
            let ws = w.baseAddress!
            let sum = vectorExpSum(logits, shift: m, scale: 1 / temperature, into: ws)
            let target = rng.nextUnitDouble() * sum
            var cumulative = 0.0
            var i = 0
            // Skip whole blocks of 16 first, then walk inside the block that crosses the target.
            while i + 16 <= n {
                let block = blockSum(UnsafePointer(ws + i), 16)
                if cumulative + Double(block) > target { break }
                cumulative += Double(block)
                i += 16
            }
            var lastPositive = -1
            while i < n {
                let wi = Double(ws[i])
                if wi > 0 {
                    cumulative += wi
                    lastPositive = i
                    if target < cumulative { return i }
                }
                i += 1
            }
            // Rounding left the target just past the total: the last token with weight.
            if lastPositive >= 0 { return lastPositive }
            var j = n - 1
            while j > 0 && !(ws[j] > 0) { j -= 1 }
            return j
        }
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
        let m = vectorMax(logits)
        guard m.isFinite else { return (m, 0) }
        return (m, vectorExpSum(logits, shift: m))
    }

    /// The top-p nucleus of the whole vocabulary: the smallest set of best tokens (descending logit, ties to the
    /// lower id) whose softmax mass reaches `topP`. Unsorted; empty when no logit is finite.
    ///
    /// Instead of sorting 49k logits, tokens are histogrammed by logit into buckets spanning the 30 nats below the
    /// maximum (lower ones share the bottom bucket); buckets are summed from the top until the mass is reached,
    /// and only the bucket where it is crossed gets sorted.
    static func nucleus(_ logits: UnsafeBufferPointer<Float>, topP: Float) -> [SamplingCandidate] {
        let n = logits.count
        let m = vectorMax(logits)
        guard m.isFinite else { return [] }
        let weights = [Float](unsafeUninitializedCapacity: n) { buffer, count in
            _ = vectorExpSum(logits, shift: m, into: buffer.baseAddress!)
            count = n
        }
        let bucketCount = 1024
        let span: Float = 30
        let lo = m - span
        let scale = Float(bucketCount - 1) / span
        var bucketMass = [Double](repeating: 0, count: bucketCount)
        var bucketOf = [Int16](repeating: -1, count: n)  // -1: zero weight (NaN / -inf)
        var total = 0.0
        for i in 0..<n {
            let v = logits[i]
            guard v > -Float.infinity else { continue }  // also false for NaN
            let b = v <= lo ? 0 : Swift.min(bucketCount - 1, Int((v - lo) * scale))
            bucketOf[i] = Int16(b)
            let w = Double(weights[i])
            bucketMass[b] += w
            total += w
        }
        let target = Double(topP) * total
        var cumulative = 0.0
        var crossing = bucketCount - 1
        while crossing > 0 && cumulative + bucketMass[crossing] < target {
            cumulative += bucketMass[crossing]
            crossing -= 1
        }
        var result: [SamplingCandidate] = []
        var boundary: [SamplingCandidate] = []
        for i in 0..<n {
            let b = Int(bucketOf[i])
            if b > crossing {
                result.append(SamplingCandidate(id: Int32(i), logit: logits[i]))
            } else if b == crossing {
                boundary.append(SamplingCandidate(id: Int32(i), logit: logits[i]))
            }
        }
        boundary.sort(by: SamplingCandidate.ranksBefore)
        for c in boundary {
            if cumulative >= target && !result.isEmpty { break }
            result.append(c)
            cumulative += Double(weights[Int(c.id)])
        }
        return result
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
