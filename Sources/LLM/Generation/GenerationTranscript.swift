import Foundation

/// What a generation has emitted: tokens with their log-probabilities, sources and times, and the
/// text streamed so far. Every token loop (local, edge, collab, spec, naive, cloud) emits through
/// it, so end of generation (`Tokenizer.isEndOfGeneration`, llama.cpp's EOG set), the token limit
/// and UTF-8 streaming behave the same in every mode.
public struct GenerationTranscript {
    public private(set) var result: GenerationResult
    /// The prompt and the tokens emitted so far (the sampler's repetition window).
    public private(set) var history: [Int]
    private var decoder: StreamingDecoder
    private let tokenizer: Tokenizer
    private let maxTokens: Int
    private let start = Date()

    public init(prompt: [Int], tokenizer: Tokenizer, maxTokens: Int) {
        result = GenerationResult(promptTokens: prompt.count)
        history = prompt
        decoder = StreamingDecoder(tokenizer: tokenizer)
        self.tokenizer = tokenizer
        self.maxTokens = maxTokens
    }

    /// Whether the limit leaves room for another token.
    public var wantsMore: Bool { result.tokens.count < maxTokens }

    public func isStop(_ token: Int) -> Bool { tokenizer.isEndOfGeneration(token) }

    /// Records one decided token; false when generation must end (an end-of-generation token, or
    /// the limit reached). `onPiece` receives each complete UTF-8 piece of text with its token's source.
    public mutating func emit(_ token: Int, logprob: Float, source: TokenSource,
                              onPiece: (_ text: String, _ source: TokenSource) -> Void) -> Bool {
        if result.tokens.isEmpty && result.prefillSeconds == 0 { result.prefillSeconds = Date().timeIntervalSince(start) }
        if isStop(token) {
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
        return wantsMore
    }

    public mutating func stop(_ reason: GenerationResult.StopReason) { result.stopReason = reason }

    /// Flushes the decoder and closes the timings.
    public mutating func finish(onPiece: (_ text: String, _ source: TokenSource) -> Void) -> GenerationResult {
        let tail = decoder.finish()
        if !tail.isEmpty {
            result.text += tail
            onPiece(tail, result.sources.last ?? .local)
        }
        result.decodeSeconds = Date().timeIntervalSince(start) - result.prefillSeconds
        return result
    }
}
