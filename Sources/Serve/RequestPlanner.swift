import Foundation
import LLM

/// A request body turned into what the edge will run: the checked generation and how to answer.
public struct PlannedRequest: Sendable {
    public var generation: GenerationRequest
    public var stream: Bool
    public var includeUsage: Bool
}

/// The pure part of the API's handlers: decodes a JSON body, checks it and builds the prompt and the
/// generation request, or throws the 400 the client gets. No I/O, so the OpenAI request fuzz target
/// (Sources/FuzzTargets) drives exactly what `APIServer` runs.
public struct RequestPlanner: Sendable {
    public let tokenizer: Tokenizer
    public let contextLength: Int
    /// How chat messages become the prompt; nil: chat requests are refused with `chatFormatMissing`.
    public let chatFormat: ChatFormat?
    public var chatFormatMissing = "this model has no chat template collm knows; restart collm serve with --template NAME"
    /// Largest max_tokens accepted.
    public var maxTokensLimit = 4096

    public init(tokenizer: Tokenizer, contextLength: Int, chatFormat: ChatFormat?) {
        self.tokenizer = tokenizer
        self.contextLength = contextLength
        self.chatFormat = chatFormat
    }

    /// A /v1/chat/completions body.
    public func chat(body: Data) throws -> PlannedRequest {
        let body: ChatCompletionRequest = try Self.decode(body)
        guard !body.messages.isEmpty else { throw APIError.invalid("messages must not be empty") }
        var messages: [ChatMessage] = []
        for (i, m) in body.messages.enumerated() {
            guard ["system", "user", "assistant"].contains(m.role) else {
                throw APIError.invalid("unsupported role '\(m.role)' (use system, user or assistant)")
            }
            // OpenAI accepts a null content for assistant messages (those that only called tools).
            guard m.content != nil || m.role == "assistant" else {
                throw APIError.invalid("messages[\(i)].content must be a string or an array of text parts (null only for assistant messages)")
            }
            guard let text = m.content.map({ $0.text }) ?? "" else {
                throw APIError.invalid("messages[\(i)].content: only text parts are supported")
            }
            messages.append(ChatMessage(role: m.role, content: text))
        }
        guard let chatFormat else { throw APIError.invalid(chatFormatMissing) }
        let text = chatFormat.render(messages)
        let prompt = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        return try plan(prompt: prompt, maxTokens: body.max_completion_tokens ?? body.options.max_tokens, options: body.options)
    }

    /// A /v1/completions body.
    public func completion(body: Data) throws -> PlannedRequest {
        let body: CompletionRequest = try Self.decode(body)
        guard !body.prompt.isEmpty else { throw APIError.invalid("prompt must not be empty") }
        let prompt = tokenizer.encode(body.prompt, addSpecial: true, parseSpecial: false)
        return try plan(prompt: prompt, maxTokens: body.options.max_tokens, options: body.options)
    }

    private func plan(prompt: [Int], maxTokens: Int?, options: RequestOptions) throws -> PlannedRequest {
        try checkSingleChoice(options.n)
        let generation = try generationRequest(prompt: prompt, maxTokens: maxTokens, temperature: options.temperature,
                                               topP: options.top_p, seed: options.seed)
        return PlannedRequest(generation: generation, stream: options.stream == true,
                              includeUsage: options.stream_options?.include_usage == true)
    }

    static func decode<T: Decodable>(_ data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw APIError.invalid("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw APIError.invalid("wrong type at '\(Self.path(context))'")
        } catch let DecodingError.valueNotFound(_, context) {
            throw APIError.invalid("'\(Self.path(context))' must not be null")
        } catch {
            throw APIError.invalid("the body is not valid JSON for this endpoint")
        }
    }

    /// A decoding error's place in the body, e.g. "messages.0.content".
    private static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

    /// One choice per request: `n` other than 1 is refused rather than silently answered once.
    private func checkSingleChoice(_ n: Int?) throws {
        guard let n, n != 1 else { return }
        throw APIError.invalid("n must be 1: this server returns one choice per request (got \(n))")
    }

    private func generationRequest(prompt: [Int], maxTokens requested: Int?, temperature: Float?, topP: Float?, seed: UInt64?) throws -> GenerationRequest {
        if let requested, requested < 1 || requested > maxTokensLimit {
            throw APIError.invalid("max_tokens must be in 1...\(maxTokensLimit)")
        }
        let context = contextLength
        guard prompt.count < context else {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; this server's context is \(context)", code: "context_length_exceeded")
        }
        // Prompt and answer share the context: an explicit max_tokens that cannot fit is refused (as
        // OpenAI does) instead of ending early; the default shrinks to what fits.
        let room = context - prompt.count
        if let requested, requested > room {
            throw APIError.invalid("this server's context is \(context) tokens: the prompt has \(prompt.count) and max_tokens asks for "
                                   + "\(requested) more (at most \(room) fit)", code: "context_length_exceeded")
        }
        let maxTokens = requested ?? min(256, room)
        var sampling = SamplingParameters()
        sampling.temperature = temperature ?? 0
        sampling.topP = topP ?? 1
        sampling.seed = seed
        do { try sampling.validate() } catch { throw APIError.invalid("\(error)") }
        return GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: sampling)
    }
}
