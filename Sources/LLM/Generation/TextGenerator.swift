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

    /// Tokens that end generation: EOS and the chat templates' end-of-turn tokens.
    public var stopTokens: Set<Int> { Self.stopTokens(of: tokenizer) }

    /// The tokenizer's end-of-generation tokens (EOS and the end-of-turn tokens found by text, as llama.cpp's
    /// EOG set: `<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`, `<|end|>`, ...), so every `ChatTemplate`'s stop
    /// string that is a token ends generation.
    public static func stopTokens(of tokenizer: Tokenizer) -> Set<Int> {
        var stops = tokenizer.endOfGenerationIds
        if let eos = tokenizer.eos { stops.insert(eos) }
        if let end = tokenizer.tokenId(for: "<|im_end|>") { stops.insert(end) }
        if let end = tokenizer.tokenId(for: "<|endoftext|>") { stops.insert(end) }
        return stops
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
        let stops = stopTokens

        let prefillStart = Date()
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
        let prefillSeconds = Date().timeIntervalSince(prefillStart)

        let decodeStart = Date()
        var history = prompt
        var generated: [Int] = []
        var logprobs: [Float] = []
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var text = ""
        var reason = GenerationResult.StopReason.maxTokens
        while generated.count < maxTokens {
            try Task.checkCancellation()  // a cancelled request (serve: the client left) stops within one token
            let token = sampler.sample(logits: logits, history: history)
            if stops.contains(token) {
                reason = .endOfSequence
                break
            }
            logprobs.append(logProbability(of: token, in: logits))
            generated.append(token)
            history.append(token)
            let piece = decoder.append(token)
            if !piece.isEmpty {
                text += piece
                onText(piece)
            }
            if generated.count == maxTokens { break }
            if cache.count + 1 > capacity {
                reason = .contextFull
                break
            }
            var hidden = try model.embed([token])
            try model.forward(&hidden, cache: cache)
            logits = try model.logits(hidden)
        }
        let tail = decoder.finish()
        if !tail.isEmpty {
            text += tail
            onText(tail)
        }
        return GenerationResult(text: text, tokens: generated, logprobs: logprobs, promptTokens: prompt.count,
                                stopReason: reason, prefillSeconds: prefillSeconds,
                                decodeSeconds: Date().timeIntervalSince(decodeStart))
    }
}
