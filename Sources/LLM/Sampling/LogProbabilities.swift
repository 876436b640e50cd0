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

/// Numerically stable log-softmax: `logits[i] - logSumExp(logits)`.
public func logSoftmax(_ logits: UnsafeBufferPointer<Float>) -> [Float] {
    let lse = logSumExp(logits)
    return logits.map { $0 - lse }
}

public func logSoftmax(_ logits: [Float]) -> [Float] {
    logits.withUnsafeBufferPointer { logSoftmax($0) }
}

/// The `k` most likely tokens with their log-probabilities, most likely first (ties to the lower id).
/// Uses partial selection, so it is cheap for small `k` on a large vocabulary.
public func topCandidates(_ logits: UnsafeBufferPointer<Float>, k: Int) -> [(id: Int, logprob: Float)] {
    guard k > 0, !logits.isEmpty else { return [] }
    let lse = logSumExp(logits)
    return selectTop(logits, k: k).map { (id: Int($0.id), logprob: $0.logit - lse) }
}

public func topCandidates(_ logits: [Float], k: Int) -> [(id: Int, logprob: Float)] {
    logits.withUnsafeBufferPointer { topCandidates($0, k: k) }
}

/// log p(id) under softmax(logits).
public func logProbability(of id: Int, in logits: UnsafeBufferPointer<Float>) -> Float {
    precondition(id >= 0 && id < logits.count, "logProbability: token id \(id) outside 0..<\(logits.count)")
    return logits[id] - logSumExp(logits)
}

public func logProbability(of id: Int, in logits: [Float]) -> Float {
    logits.withUnsafeBufferPointer { logProbability(of: id, in: $0) }
}
