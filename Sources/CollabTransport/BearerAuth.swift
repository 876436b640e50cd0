import GRPCCore

/// Requires `authorization: Bearer <token>` on every call. The cloud installs it whenever it has a
/// token (and insists on one when listening beyond loopback).
public struct BearerAuth: ServerInterceptor {
    let expected: [UInt8]

    public init(token: String) { expected = Array("Bearer \(token)".utf8) }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let given = request.metadata[stringValues: "authorization"].first(where: { _ in true }).map { Array($0.utf8) } ?? []
        guard constantTimeEqual(given, expected) else {
            throw RPCError(code: .unauthenticated, message: "missing or wrong bearer token")
        }
        return try await next(request, context)
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return diff == 0
}
