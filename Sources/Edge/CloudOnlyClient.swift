import CollabCore
import LLM

/// The `cloud` baseline from the edge's side: send the prompt, stream the cloud's tokens.
public struct CloudOnlyClient {
    let tokenizer: Tokenizer

    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, link: CloudGenerationLink,
                         onText: @escaping (String) -> Void) async throws -> GenerationResult {
        var transcript = GenerationTranscript(prompt: prompt, tokenizer: tokenizer, maxTokens: maxTokens)
        let onPiece = { (text: String, _: TokenSource) in onText(text) }
        var ended = false
        var cloudSeconds = 0.0
        let traffic = try await link.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling,
                                              stopTokens: tokenizer.endOfGenerationIds) { reply in
            cloudSeconds += reply.cloudSeconds
            // The cloud ends the stream itself at a stop token or the limit.
            guard !ended else { return }
            ended = !transcript.emit(reply.token, logprob: reply.logprob, source: .cloud, onPiece: onPiece)
        }
        var result = transcript.finish(onPiece: onPiece)
        result.cloudSeconds = cloudSeconds
        result.traffic = traffic
        return result
    }
}
