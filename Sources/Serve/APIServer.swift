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
    /// When set, every route but /health requires `Authorization: Bearer <apiKey>`.
    public var apiKey: String?

    public init(worker: EdgeWorker, metrics: ServeMetrics, modelName: String, chatFormat: ChatFormat?, apiKey: String? = nil) {
        self.worker = worker
        self.metrics = metrics
        self.modelName = modelName
        self.chatFormat = chatFormat
        self.apiKey = apiKey
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
        if let apiKey { router.add(middleware: APIKeyCheck(key: apiKey)) }
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
            try await untilClientLeaves(request) { body in await handle { try await chat(request, body) } }
        }
        router.post("/v1/completions") { request, _ in
            try await untilClientLeaves(request) { body in await handle { try await complete(request, body) } }
        }
        return router
    }

    /// Runs `respond` with the request's body and cancels it when the client closes the connection,
    /// so the generation of a client that left stops within one token and frees the edge for the
    /// next request. (A streamed response outlives `respond`: it stops at its next write, see `stream`.)
    /// Watching for the close consumes the connection's input, so the answer closes the connection.
    private func untilClientLeaves(_ request: Request, _ respond: @escaping @Sendable (RequestBody) async -> Response) async throws -> Response {
        var response = try await request.body.consumeWithCancellationOnInboundClose { body in await respond(body) }
        response.headers[.connection] = "close"
        return response
    }

    /// Turns thrown errors into OpenAI-style error responses (never a dropped connection).
    private func handle(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            metrics.recordFailure()
            return error.response
        } catch let full as RequestQueue.QueueFull {
            metrics.recordQueueFull()
            var response = APIError(.serviceUnavailable, "server_error",
                                    "the server is busy: \(full.waiting) requests are already waiting (serve --max-queue); retry later",
                                    code: "queue_full").response
            response.headers[.retryAfter] = "\(full.retryAfterSeconds)"
            return response
        } catch is CancellationError {
            // The client left; nobody reads this answer.
            metrics.recordCancellation()
            return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"))
        } catch {
            metrics.recordFailure()
            return APIError(.internalServerError, "server_error", "\(error)").response
        }
    }

    /// The request checker with this server's settings.
    var planner: RequestPlanner {
        var planner = RequestPlanner(tokenizer: worker.tokenizer, contextLength: worker.contextLength, chatFormat: chatFormat)
        planner.chatFormatMissing = chatFormatMissing
        planner.maxTokensLimit = maxTokensLimit
        return planner
    }

    private func chat(_ request: Request, _ requestBody: RequestBody) async throws -> Response {
        let plan = try planner.chat(body: try await collect(request, requestBody))
        return try await answer(plan, id: "chatcmpl", object: "chat.completion", chunkObject: "chat.completion.chunk",
                                chunkChoice: { piece, finish in
                                    // The opening chunk carries the role, as OpenAI's do.
                                    ChatChoice(delta: .init(role: piece == nil && finish == nil ? "assistant" : nil, content: piece),
                                               finish_reason: finish)
                                },
                                choice: { text, finish in ChatChoice(message: .init(role: "assistant", content: text), finish_reason: finish) })
    }

    private func complete(_ request: Request, _ requestBody: RequestBody) async throws -> Response {
        let plan = try planner.completion(body: try await collect(request, requestBody))
        return try await answer(plan, id: "cmpl", object: "text_completion", chunkObject: "text_completion",
                                chunkChoice: { piece, finish in TextChoice(text: piece ?? "", finish_reason: finish) },
                                choice: { text, finish in TextChoice(text: text, finish_reason: finish) })
    }

    /// Runs a planned request and answers it: a stream of chunks (`chunkChoice` makes a piece's choice;
    /// nil piece: the opening or the closing chunk) or one body (`choice` from the whole text).
    private func answer<Choice: Encodable & Sendable>(
        _ plan: PlannedRequest, id prefix: String, object: String, chunkObject: String,
        chunkChoice: @escaping @Sendable (_ piece: String?, _ finish: String?) -> Choice,
        choice: (_ text: String, _ finish: String) -> Choice
    ) async throws -> Response {
        let id = "\(prefix)-\(UUID().uuidString.lowercased())"
        let created = Int(Date().timeIntervalSince1970)
        let modelName = self.modelName
        if plan.stream {
            let usageChunk = plan.includeUsage ? { @Sendable (usage: Usage) in
                Completion<Choice>(id: id, object: chunkObject, created: created, model: modelName, choices: [], usage: usage)
            } : nil
            try worker.queue.checkRoom()  // a full queue is a 503 before the stream's 200
            return stream(plan.generation, usageChunk: usageChunk) { piece, info, finish in
                Completion(id: id, object: chunkObject, created: created, model: modelName,
                           choices: [chunkChoice(piece, finish)], collm: info)
            }
        }
        let (r, info) = try await run(plan.generation, onText: { _ in })
        return try json(Completion(id: id, object: object, created: created, model: modelName,
                                   choices: [choice(r.text, finishReason(r))], usage: usage(r), collm: info))
    }

    // MARK: - Shared steps

    /// The body of a JSON request (no Content-Type: JSON assumed; a form or text body is refused rather than guessed at).
    private func collect(_ request: Request, _ body: RequestBody) async throws -> Data {
        if let type = request.headers[.contentType],
           type.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() != "application/json" {
            throw APIError(.unsupportedMediaType, "invalid_request_error", "Content-Type must be application/json (got '\(type)')")
        }
        do {
            return Data(buffer: try await body.collect(upTo: maxBodyBytes))
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "invalid_request_error", "request body over \(maxBodyBytes) bytes")
        }
    }

    private func run(_ generation: GenerationRequest, onText: @escaping @Sendable (String) -> Void) async throws -> (GenerationResult, CollabInfo) {
        let start = Date()
        let r = try await worker.generate(generation, onText: onText)
        let seconds = Date().timeIntervalSince(start)
        metrics.record(sources: r.sources, promptTokens: r.promptTokens, bytesUp: r.traffic.bytesUp,
                       bytesDown: r.traffic.bytesDown, seconds: seconds)
        let info = CollabInfo(mode: worker.mode.rawValue, sources: r.sources, edge_rate: r.sources.edgeShare,
                              bytes_up: r.traffic.bytesUp, bytes_down: r.traffic.bytesDown,
                              round_trips: r.traffic.roundTrips, seconds: seconds)
        return (r, info)
    }

    /// Server-sent events: one chunk per text piece, a final chunk with the finish reason and the
    /// collaboration summary, with `include_usage` a chunk with the usage, then `data: [DONE]`. When
    /// the client leaves, the next write fails, the event stream is dropped and the generation is
    /// cancelled (it stops within one token).
    private func stream<Chunk: Encodable & Sendable>(_ generation: GenerationRequest, usageChunk: (@Sendable (Usage) -> Chunk)?,
                                                     chunk: @escaping @Sendable (String?, CollabInfo?, String?) -> Chunk) -> Response {
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let server = self
        let producer = Task {
            continuation.yield(Self.event(chunk(nil, nil, nil)))
            do {
                let (r, info) = try await server.run(generation) { piece in continuation.yield(Self.event(chunk(piece, nil, nil))) }
                continuation.yield(Self.event(chunk(nil, info, server.finishReason(r))))
                if let usageChunk { continuation.yield(Self.event(usageChunk(server.usage(r)))) }
            } catch is CancellationError {
                server.metrics.recordCancellation()
            } catch let full as RequestQueue.QueueFull {
                server.metrics.recordQueueFull()
                continuation.yield(Self.event(APIErrorBody(error: .init(
                    message: "the server is busy: \(full.waiting) requests are already waiting; retry later", type: "server_error",
                    code: "queue_full"))))
            } catch {
                server.metrics.recordFailure()
                continuation.yield(Self.event(APIErrorBody(error: .init(message: "\(error)", type: "server_error"))))
            }
            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
            continuation.finish()
        }
        continuation.onTermination = { reason in
            if case .cancelled = reason { producer.cancel() }
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

    private func finishReason(_ r: GenerationResult) -> String { r.stopReason == .endOfSequence ? "stop" : "length" }

    private func usage(_ r: GenerationResult) -> Usage {
        Usage(prompt_tokens: r.promptTokens, completion_tokens: r.tokens.count, total_tokens: r.promptTokens + r.tokens.count)
    }
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
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    let data = try encoder.encode(value)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
