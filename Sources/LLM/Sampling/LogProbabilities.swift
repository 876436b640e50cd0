import Foundation

/// log(sum(exp(logits))), computed stably (max subtracted, Double accumulation). -infinity for empty input.
public func logSumExp(_ logits: UnsafeBufferPointer<Float>) -> Float {
    let (m, sum) = Sampler.maxAndExpSum(logits)
    guard m.isFinite else { return m }
    return m + Float(Foundation.log(sum))
}

public func logSumExp(_ logits: [Float]) -> Float {
    logits.withUnsafeBufferPointer { logSumExp($0) }
}

/// Max logit and log(sum(exp(l - max))): log-probabilities are `(l - max) - logSum`, which keeps full precision
/// even when the logits themselves are large.
@inline(__always)
func logSoftmaxOffsets(_ logits: UnsafeBufferPointer<Float>) -> (max: Float, logSum: Float) {
    let (m, sum) = Sampler.maxAndExpSum(logits)
    return (m, Float(Foundation.log(sum)))
}

/// Numerically stable log-softmax: `(logits[i] - max) - log(sum(exp(logits - max)))`.
public func logSoftmax(_ logits: UnsafeBufferPointer<Float>) -> [Float] {
    let (m, logSum) = logSoftmaxOffsets(logits)
    return logits.map { ($0 - m) - logSum }
}

public func logSoftmax(_ logits: [Float]) -> [Float] {
    logits.withUnsafeBufferPointer { logSoftmax($0) }
}

/// The `k` most likely tokens with their log-probabilities, most likely first (ties to the lower id).
/// Uses partial selection, so it is cheap for small `k` on a large vocabulary.
public func topCandidates(_ logits: UnsafeBufferPointer<Float>, k: Int) -> [(id: Int, logprob: Float)] {
    guard k > 0, !logits.isEmpty else { return [] }
    let (m, logSum) = logSoftmaxOffsets(logits)
    return selectTop(logits, k: k).map { (id: Int($0.id), logprob: ($0.logit - m) - logSum) }
}

public func topCandidates(_ logits: [Float], k: Int) -> [(id: Int, logprob: Float)] {
    logits.withUnsafeBufferPointer { topCandidates($0, k: k) }
}

/// log p(id) under softmax(logits).
public func logProbability(of id: Int, in logits: UnsafeBufferPointer<Float>) -> Float {
    precondition(id >= 0 && id < logits.count, "logProbability: token id \(id) outside 0..<\(logits.count)")
    let (m, logSum) = logSoftmaxOffsets(logits)
    return (logits[id] - m) - logSum
}

public func logProbability(of id: Int, in logits: [Float]) -> Float {
    logits.withUnsafeBufferPointer { logProbability(of: id, in: $0) }
}

// MARK: - Hot loops over the vocabulary
//
// Written as plain branch-free scalar loops: the LLM target is built without a target-CPU flag, where Swift's
// SIMD16 generics compile to slow lane-by-lane code, while these loops auto-vectorise with the baseline ISA.

/// exp(x) (Cephes-style range reduction and polynomial; relative error ~2e-7), 0 below -87 and for NaN,
/// so masked (-infinity) logits get zero weight.
@inline(__always)
func fastExp(_ x: Float) -> Float {
    let c = Swift.min(Swift.max(x, -87), 88)  // NaN -> -87 (treated below)
    let t = c * 1.442_695_040_888_963_4 + 12_582_912  // 1.5 * 2^23: rounds to the nearest integer
    let n = t - 12_582_912
    let r = c - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    p = p * (r * r) + r + 1
    let bits = (Int32(bitPattern: t.bitPattern) &- 0x4B40_0000 &+ 127) &<< 23  // 2^n
    let e = p * Float(bitPattern: UInt32(bitPattern: bits))
    return x >= -87 ? e : 0
}

/// Largest non-NaN value (-infinity when there is none).
func vectorMax(_ x: UnsafeBufferPointer<Float>) -> Float {
    guard let base = x.baseAddress else { return -.infinity }
    let n = x.count
    var m0 = -Float.infinity, m1 = -Float.infinity, m2 = -Float.infinity, m3 = -Float.infinity
    var i = 0
    while i + 4 <= n {
        let a = base[i], b = base[i + 1], c = base[i + 2], d = base[i + 3]
        m0 = a > m0 ? a : m0
        m1 = b > m1 ? b : m1
        m2 = c > m2 ? c : m2
        m3 = d > m3 ? d : m3
        i += 4
    }
    while i < n {
        if base[i] > m0 { m0 = base[i] }
        i += 1
    }
    m0 = m1 > m0 ? m1 : m0
    m2 = m3 > m2 ? m3 : m2
    return m2 > m0 ? m2 : m0
}

/// Sum of exp((x - shift) * scale), optionally storing each term in `out` (same count as `x`).
/// NaN and -infinity entries contribute 0. Works in blocks: a pure map (vectorisable) into the block's
/// output, then a sum with independent accumulators, flushed to Double per block.
func vectorExpSum(
    _ x: UnsafeBufferPointer<Float>, shift: Float, scale: Float = 1, into out: UnsafeMutablePointer<Float>? = nil
) -> Double {
    guard let base = x.baseAddress else { return 0 }
    let n = x.count
    let blockSize = 1024
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: blockSize) { local -> Double in
        var total = 0.0
        var start = 0
        while start < n {
            let count = Swift.min(blockSize, n - start)
            let dst = out.map { $0 + start } ?? local.baseAddress!
            let src = base + start
            for i in 0..<count { dst[i] = fastExp((src[i] - shift) * scale) }
            total += Double(blockSum(UnsafePointer(dst), count))
            start += count
        }
        return total
    }
}

/// Sum of `count` floats with eight independent accumulators.
@inline(__always)
func blockSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
    var a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var i = 0
    while i + 8 <= count {
        a0 += p[i]
        a1 += p[i + 1]
        a2 += p[i + 2]
        a3 += p[i + 3]
        a4 += p[i + 4]
        a5 += p[i + 5]
        a6 += p[i + 6]
        a7 += p[i + 7]
        i += 8
    }
    while i < count {
        a0 += p[i]
        i += 1
    }
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
}
