import Foundation

/// Perplexity as llama.cpp's `llama-perplexity` computes it, so figures compare directly: the
/// tokens are cut into chunks of `context` tokens, each evaluated from an empty cache; the first
/// half of a chunk is context only and the second half is scored (positions first..<context-1
/// predict their next token).
public struct PerplexityResult: Sendable, Codable, Equatable {
    public var ppl: Double
    /// Tokens scored.
    public var tokens: Int
    public var chunks: Int
    public var seconds: Double
}

public enum PerplexityError: Error, CustomStringConvertible {
    case tooShort(tokens: Int, context: Int)
    case invalidContext(Int)

    public var description: String {
        switch self {
        case .tooShort(let t, let c): return "the text has \(t) tokens, fewer than one chunk of \(c)"
        case .invalidContext(let c): return "context \(c) must be at least 4 and even"
        }
    }
}

extension LlamaModel {
    /// - Parameters:
    ///   - tokens: the whole text, tokenized.
    ///   - prependBOS: replace each chunk's first token with `bos` (models whose vocab adds BOS).
    ///   - progress: called after each chunk with (done, total, running ppl).
    public func perplexity(tokens: [Int], context: Int, maxChunks: Int? = nil, bos: Int? = nil,
                           progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> PerplexityResult {
        guard context >= 4, context % 2 == 0 else { throw PerplexityError.invalidContext(context) }
        var chunks = tokens.count / context
        if let maxChunks { chunks = min(chunks, maxChunks) }
        guard chunks > 0 else { throw PerplexityError.tooShort(tokens: tokens.count, context: context) }
        let start = Date()
        let first = context / 2
        var nll = 0.0
        var scored = 0
        let cache = makeCache(capacity: context)
        for chunk in 0..<chunks {
            var ids = Array(tokens[chunk * context..<(chunk + 1) * context])
            if let bos { ids[0] = bos }
            cache.truncate(to: 0)
            var hidden = try embed(ids)
            try forward(&hidden, cache: cache)
            let rows = Array(first..<context - 1)
            let logits = try self.logits(hidden, rows: rows)
            let vocab = logits.count / rows.count
            logits.withUnsafeBufferPointer { buffer in
                for (j, position) in rows.enumerated() {
                    let row = UnsafeBufferPointer(rebasing: buffer[j * vocab..<(j + 1) * vocab])
                    nll -= Double(logProbability(of: ids[position + 1], in: row))
                }
            }
            scored += rows.count
            progress(chunk + 1, chunks, exp(nll / Double(scored)))
        }
        return PerplexityResult(ppl: exp(nll / Double(scored)), tokens: scored, chunks: chunks,
                                seconds: Date().timeIntervalSince(start))
    }
}
