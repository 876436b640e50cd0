import CollabCore
import Edge
import Foundation
import Hummingbird
import LLM
import NIOCore

/// The edge's OpenAI-compatible HTTP API: /v1/chat/completions and /v1/completions (optionally
/// streamed as server-sent events), /v1/models, /health and /metrics.
public struct APIServer: Sendable {
    public let worker: EdgeWorker
    public let metrics: ServeMetrics
    public let modelName: String
    /// How /v1/chat/completions turns messages into the model's prompt; nil when the model has no chat template
    /// collm knows (chat requests then get `chatFormatMissing` as an error, completions still work).
    public let chatFormat: ChatFormat?
    /// Why there is no chat format, for the chat endpoint's error.
    public var chatFormatMissing = "this model has no chat template collm knows; restart collm serve with --template NAME"
    /// Largest request body accepted.
    public var maxBodyBytes = 1 << 20
    /// Largest max_tokens accepted.
    public var maxTokensLimit = 4096

    public init(worker: EdgeWorker, metrics: ServeMetrics, modelName: String, chatFormat: ChatFormat?) {
        self.worker = worker
        self.metrics = metrics
        self.modelName = modelName
        self.chatFormat = chatFormat
    }

    /// Serves on host:port until the process is asked to stop; `onListening` gets the bound port.
    public func run(host: String, port: Int, onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(
            router: makeRouter(), configuration: .init(address: .hostname(host, port: port), serverName: "collm"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) })
        try await app.runService()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#))) }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("/v1/models") { _, _ in
            try json(ModelList(data: [.init(id: modelName, created: Int(Date().timeIntervalSince1970))]))
        }
        router.post("/v1/chat/completions") { request, _ in
            await handle { try await chat(request) }
        }
        router.post("/v1/completions") { request, _ in
            await handle { try await complete(request) }
        }
        return router
    }

    /// Turns thrown errors into OpenAI-style error responses (never a dropped connection).
    private func handle(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            metrics.recordFailure()
            return error.response
        } catch {
            metrics.recordFailure()
            return APIError(.internalServerError, "server_error", "\(error)").response
        }
    }

    private func chat(_ request: Request) async throws -> Response {
        let body: ChatCompletionRequest = try await decode(request)
        guard !body.messages.isEmpty else { throw APIError.invalid("messages must not be empty") }
        for m in body.messages where !["system", "user", "assistant"].contains(m.role) {
            throw APIError.invalid("unsupported role '\(m.role)' (use system, user or assistant)")
        }
        guard let chatFormat else { throw APIError.invalid(chatFormatMissing) }
        let text = chatFormat.render(body.messages.map { ChatMessage(role: $0.role, content: $0.content) })
        let prompt = await worker.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        let generation = try await generationRequest(prompt: prompt, maxTokens: body.max_completion_tokens ?? body.max_tokens,
                                           temperature: body.temperature, topP: body.top_p, seed: body.seed)
        let id = "chatcmpl-\(UUID().uuidString.lowercased())"
        let created = Int(Date().timeIntervalSince1970)
        if body.stream == true {
            return stream(generation) { piece, info, finish in
                ChatCompletionChunk(id: id, created: created, model: modelName,
                                    choices: [.init(delta: .init(role: piece == nil && finish == nil ? "assistant" : nil, content: piece),
                                                    finish_reason: finish)],
                                    collm: info)
            }
        }
        let (r, info) = try await run(generation, onText: { _ in })
        return try json(ChatCompletion(
            id: id, created: created, model: modelName,
            choices: [.init(message: .init(role: "assistant", content: r.text), finish_reason: finishReason(r))],
            usage: usage(r), collm: info))
    }

    private func complete(_ request: Request) async throws -> Response {
        let body: CompletionRequest = try await decode(request)
        guard !body.prompt.isEmpty else { throw APIError.invalid("prompt must not be empty") }
        let prompt = await worker.tokenizer.encode(body.prompt, addSpecial: true, parseSpecial: false)
        let generation = try await generationRequest(prompt: prompt, maxTokens: body.max_tokens, temperature: body.temperature,
                                           topP: body.top_p, seed: body.seed)
        let id = "cmpl-\(UUID().uuidString.lowercased())"
        let created = Int(Date().timeIntervalSince1970)
        if body.stream == true {
            return stream(generation) { piece, info, finish in
                TextChunk(id: id, created: created, model: modelName, choices: [.init(text: piece ?? "", finish_reason: finish)],
                          collm: info)
            }
        }
        let (r, info) = try await run(generation, onText: { _ in })
        return try json(TextCompletion(id: id, created: created, model: modelName,
                                       choices: [.init(text: r.text, finish_reason: finishReason(r))], usage: usage(r), collm: info))
    }

    // MARK: - Shared steps

    private func decode<T: Decodable>(_ request: Request) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, "invalid_request_error", "request body over \(maxBodyBytes) bytes")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let DecodingError.keyNotFound(key, _) {
            throw APIError.invalid("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw APIError.invalid("wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw APIError.invalid("the body is not valid JSON for this endpoint")
        }
    }

    private func generationRequest(prompt: [Int], maxTokens: Int?, temperature: Float?, topP: Float?, seed: UInt64?) async throws -> GenerationRequest {
        let maxTokens = maxTokens ?? 256
        guard maxTokens >= 1, maxTokens <= maxTokensLimit else {
            throw APIError.invalid("max_tokens must be in 1...\(maxTokensLimit)")
        }
        let context = await worker.contextLength
        guard prompt.count < context else {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; this server's context is \(context)", code: "context_length_exceeded")
        }
        var sampling = SamplingParameters()
        sampling.temperature = temperature ?? 0
        sampling.topP = topP ?? 1
        sampling.seed = seed
        do { try sampling.validate() } catch { throw APIError.invalid("\(error)") }
        return GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: sampling)
    }

    private func run(_ generation: GenerationRequest, onText: @escaping @Sendable (String) -> Void) async throws -> (EdgeGenerationResult, CollabInfo) {
        let start = Date()
        let r = try await worker.generate(generation, onText: onText)
        let seconds = Date().timeIntervalSince(start)
        metrics.record(sources: r.sources, promptTokens: r.promptTokens, bytesUp: r.traffic.bytesUp,
                       bytesDown: r.traffic.bytesDown, seconds: seconds)
        let edge = r.sources.filter { $0.hasPrefix("edge:") && !$0.hasSuffix(":degraded") }.count
        let info = CollabInfo(mode: await worker.mode.rawValue, sources: r.sources,
                              edge_rate: r.sources.isEmpty ? 0 : Double(edge) / Double(r.sources.count),
                              bytes_up: r.traffic.bytesUp, bytes_down: r.traffic.bytesDown,
                              round_trips: r.traffic.roundTrips, seconds: seconds)
        return (r, info)
    }

    /// Server-sent events: one chunk per text piece, a final chunk with the finish reason and the
    /// collaboration summary, then `data: [DONE]`.
    private func stream<Chunk: Encodable>(_ generation: GenerationRequest,
                                          chunk: @escaping @Sendable (String?, CollabInfo?, String?) -> Chunk) -> Response {
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let server = self
        Task {
            continuation.yield(Self.event(chunk(nil, nil, nil)))
            do {
                let (r, info) = try await server.run(generation) { piece in continuation.yield(Self.event(chunk(piece, nil, nil))) }
                continuation.yield(Self.event(chunk(nil, info, server.finishReason(r))))
            } catch {
                server.metrics.recordFailure()
                continuation.yield(Self.event(APIErrorBody(error: .init(message: "\(error)", type: "server_error"))))
            }
            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            continuation.finish()
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(asyncSequence: events))
    }

    /// One server-sent event carrying `value` as JSON.
    @Sendable private static func event(_ value: some Encodable) -> ByteBuffer {
        let data = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        return ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n")
    }

    private func finishReason(_ r: EdgeGenerationResult) -> String { r.stopReason == .endOfSequence ? "stop" : "length" }

    private func usage(_ r: EdgeGenerationResult) -> Usage {
        Usage(prompt_tokens: r.promptTokens, completion_tokens: r.tokens.count, total_tokens: r.promptTokens + r.tokens.count)
    }
}

struct TextChunk: Encodable {
    struct Choice: Encodable {
        var index = 0
        var text: String
        var finish_reason: String?
    }

    var id: String
    var object = "text_completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var collm: CollabInfo?
}

/// A request the API refuses, with its HTTP status and OpenAI error type.
struct APIError: Error {
    let status: HTTPResponse.Status
    let type: String
    let message: String
    var code: String?

    init(_ status: HTTPResponse.Status, _ type: String, _ message: String, code: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.code = code
    }

    static func invalid(_ message: String, code: String? = nil) -> APIError {
        APIError(.badRequest, "invalid_request_error", message, code: code)
    }

    var response: Response {
        (try? json(APIErrorBody(error: .init(message: message, type: type, code: code)), status: status))
            ?? Response(status: status)
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    let data = try JSONEncoder().encode(value)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
