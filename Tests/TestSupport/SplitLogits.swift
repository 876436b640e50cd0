import LLM

/// The last position's logits of `ids` through `lower` then `upper` (a split model), and through `full`:
/// what every split-equals-whole test compares.
public func splitAndWholeLogits(lower: LlamaModel, upper: LlamaModel, full: LlamaModel, ids: [Int])
    throws -> (split: [Float], whole: [Float]) {
    let capacity = ids.count + 1
    var h = try lower.embed(ids)
    try lower.forward(&h, cache: lower.makeCache(capacity: capacity))
    try upper.forward(&h, cache: upper.makeCache(capacity: capacity))
    var hf = try full.embed(ids)
    try full.forward(&hf, cache: full.makeCache(capacity: capacity))
    return (try upper.logits(h), try full.logits(hf))
}
