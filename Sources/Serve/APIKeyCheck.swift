import Hummingbird

/// Requires `Authorization: Bearer <key>` on every route but /health (left open for liveness
/// probes), answering 401 in OpenAI's error shape otherwise. `serve` insists on a key when it
/// listens beyond loopback.
struct APIKeyCheck<Context: RequestContext>: RouterMiddleware {
    private let expected: [UInt8]

    init(key: String) { expected = Array("Bearer \(key)".utf8) }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        let given = Array((request.headers[.authorization] ?? "").utf8)
        guard constantTimeEqual(given, expected) else {
            return APIError(.unauthorized, "invalid_request_error",
                            "missing or incorrect API key: send the header 'Authorization: Bearer KEY' with serve's --api-key",
                            code: "invalid_api_key").response
        }
        return try await next(request, context)
    }

    /// Compares without an early exit, so timing does not reveal how much of a guess was right.
    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
