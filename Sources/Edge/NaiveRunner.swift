import CollabCore
import Foundation
import LLM

/// The paper's naive split baseline (`naive` mode): the edge runs layers [0, s) and, for every
/// token, sends the boundary states of the whole context to the cloud, which keeps nothing between steps.
public struct NaiveRunner {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let wire: WireFormat

    public init(model: LlamaModel, tokenizer: Tokenizer, wire: WireFormat) {
        precondition(model.hasEmbeddings, "the edge needs the embeddings")
        self.model = model
        self.tokenizer = tokenizer
        self.wire = wire
    }

    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, link: NaiveCloudLink,
                         onText: (String) -> Void) async throws -> GenerationResult {
        guard !prompt.isEmpty else { throw EngineError.emptyInput }
        let codec = try HiddenStateCodec(format: wire, width: model.config.hiddenSize)
        let cache = model.makeCache(capacity: min(model.config.contextLength, prompt.count + maxTokens + 1))
        var transcript = GenerationTranscript(prompt: prompt, tokenizer: tokenizer, maxTokens: maxTokens)
        let onPiece = { (text: String, _: TokenSource) in onText(text) }
        var states: [UInt8] = []
        var input = prompt
        var (edgeSeconds, cloudSeconds) = (0.0, 0.0)
        while transcript.wantsMore {
            try Task.checkCancellation()
            let edgeStart = Date()
            var hidden = try model.embed(input)
            try model.forward(&hidden, cache: cache)
            states += try codec.encode(hidden)
            edgeSeconds += Date().timeIntervalSince(edgeStart)
            let reply = try await link.step(rows: cache.count, states: states, wire: wire, sampling: sampling)
            cloudSeconds += reply.cloudSeconds
            guard transcript.emit(reply.token, logprob: reply.logprob, source: .cloud, onPiece: onPiece) else { break }
            input = [reply.token]
        }
        var result = transcript.finish(onPiece: onPiece)
        result.edgeSeconds = edgeSeconds
        result.cloudSeconds = cloudSeconds
        result.traffic = link.traffic
        return result
    }
}
