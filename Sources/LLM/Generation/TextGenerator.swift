import Foundation

/// Autoregressive generation with the full model in process (the `local` mode): batched prompt
/// prefill, then one token per forward pass, streaming complete UTF-8 text as it is produced.
public final class TextGenerator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    /// Prompt rows per forward pass during prefill.
    public var prefillBatch = 256

    public init(model: LlamaModel, tokenizer: Tokenizer) {
        precondition(model.hasEmbeddings && model.hasHead, "local generation needs the whole model")
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates up to `maxTokens` tokens after `prompt`; `onText` receives streamed text pieces.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters,
                         contextCapacity: Int? = nil,
                         onText: (String) -> Void = { _ in }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw EngineError.emptyInput }
        let capacity = min(contextCapacity ?? model.config.contextLength, model.config.contextLength)
        guard prompt.count < capacity else {
            throw EngineError.contextFull(needed: prompt.count + 1, capacity: capacity)
        }
        let cache = model.makeCache(capacity: capacity)
        var sampler = Sampler(parameters: sampling)
        var transcript = GenerationTranscript(prompt: prompt, tokenizer: tokenizer, maxTokens: maxTokens)
        let onPiece = { (text: String, _: TokenSource) in onText(text) }

        var last = HiddenStates(rows: 0, width: model.config.hiddenSize)
        var offset = 0
        while offset < prompt.count {
            try Task.checkCancellation()
            let end = min(prompt.count, offset + prefillBatch)
            var hidden = try model.embed(Array(prompt[offset..<end]))
            try model.forward(&hidden, cache: cache)
            last = hidden.rows(hidden.rows - 1..<hidden.rows)
            offset = end
        }
        var logits = try model.logits(last)
        while transcript.wantsMore {
            try Task.checkCancellation()  // a cancelled request (serve: the client left) stops within one token
            let token = sampler.sample(logits: logits, history: transcript.history)
            guard transcript.emit(token, logprob: logProbability(of: token, in: logits), source: .local, onPiece: onPiece)
            else { break }
            if cache.count + 1 > capacity {
                transcript.stop(.contextFull)
                break
            }
            var hidden = try model.embed([token])
            try model.forward(&hidden, cache: cache)
            logits = try model.logits(hidden)
        }
        return transcript.finish(onPiece: onPiece)
    }
}
