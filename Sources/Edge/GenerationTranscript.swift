import Foundation
import LLM

/// What a generation has emitted: tokens with their log-probabilities, sources and times, and the
/// text streamed so far. Both edge runners emit through it, so stop tokens, the token limit and
/// UTF-8 streaming behave the same in every mode.
struct GenerationTranscript {
    private(set) var result: EdgeGenerationResult
    private(set) var history: [Int]
    private var decoder: StreamingDecoder
    private let stops: Set<Int>
    private let maxTokens: Int
    let start = Date()

    init(prompt: [Int], tokenizer: Tokenizer, maxTokens: Int) {
        result = EdgeGenerationResult(text: "", tokens: [], logprobs: [], sources: [], promptTokens: prompt.count,
                                      stopReason: .maxTokens)
        history = prompt
        decoder = StreamingDecoder(tokenizer: tokenizer)
        stops = TextGenerator.stopTokens(of: tokenizer)
        self.maxTokens = maxTokens
    }

    func isStop(_ token: Int) -> Bool { stops.contains(token) }

    /// Records one decided token; false when generation must end (a stop token, or the limit reached).
    mutating func emit(_ token: Int, logprob: Float, source: String, onPiece: (String, String) -> Void) -> Bool {
        if result.tokens.isEmpty && result.prefillSeconds == 0 { result.prefillSeconds = Date().timeIntervalSince(start) }
        if stops.contains(token) {
            result.stopReason = .endOfSequence
            return false
        }
        result.tokens.append(token)
        result.logprobs.append(logprob)
        result.sources.append(source)
        result.tokenSeconds.append(Date().timeIntervalSince(start))
        history.append(token)
        let piece = decoder.append(token)
        if !piece.isEmpty {
            result.text += piece
            onPiece(piece, source)
        }
        return result.tokens.count < maxTokens
    }

    mutating func stop(_ reason: GenerationResult.StopReason) { result.stopReason = reason }

    /// Flushes the decoder and closes the timings.
    mutating func finish(onPiece: (String, String) -> Void) -> EdgeGenerationResult {
        let tail = decoder.finish()
        if !tail.isEmpty {
            result.text += tail
            onPiece(tail, result.sources.last ?? "")
        }
        result.decodeSeconds = Date().timeIntervalSince(start) - result.prefillSeconds
        return result
    }
}
