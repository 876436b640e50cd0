import Cloud
import Foundation
import GRPCCore

/// The principals a cloud accepts, each with its bearer token. A session belongs to the principal
/// that opened it: another principal sees it exactly as an unknown session.
public struct Principals: Sendable {
    private let entries: [(authorization: [UInt8], name: String)]
    /// Quotas the tokens file sets for some principals (the others get the cloud's default quota).
    public let quotas: [String: PrincipalQuota]

    /// `tokens` maps each token to its principal's name.
    public init(tokens: [String: String], quotas: [String: PrincipalQuota] = [:]) {
        entries = tokens.map { (Array("Bearer \($0.key)".utf8), $0.value) }
        self.quotas = quotas
    }

    /// Reads "NAME TOKEN [sessions=N] [memory-mib=M]" lines (blank lines and # comments ignored).
    /// The optional fields override the default quota of that principal.
    public init(file path: String, defaultQuota: PrincipalQuota = PrincipalQuota()) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CloudServerError("cannot read the tokens file \(path)")
        }
        var tokens: [String: String] = [:]
        var quotas: [String: PrincipalQuota] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let place = "\(path):\(number + 1)"
            guard fields.count >= 2, fields[1].count >= 8 else {
                throw CloudServerError("\(place): expected NAME TOKEN [sessions=N] [memory-mib=M] with a token of at least 8 characters")
            }
            guard tokens.updateValue(fields[0], forKey: fields[1]) == nil else {
                throw CloudServerError("\(place): token used twice")
            }
            if fields.count > 2 {
                var quota = quotas[fields[0]] ?? defaultQuota
                for field in fields.dropFirst(2) {
                    let pair = field.split(separator: "=", maxSplits: 1).map(String.init)
                    guard pair.count == 2, let value = Int(pair[1]), value > 0 else {
                        throw CloudServerError("\(place): '\(field)' is not sessions=N or memory-mib=M with a positive N or M")
                    }
                    switch pair[0] {
                    case "sessions": quota.maxSessions = value
                    case "memory-mib": quota.maxBytes = value << 20
                    default: throw CloudServerError("\(place): unknown quota '\(pair[0])' (known: sessions, memory-mib)")
                    }
                }
                quotas[fields[0]] = quota
            }
        }
        guard !tokens.isEmpty else { throw CloudServerError("\(path) names no principal") }
        self.init(tokens: tokens, quotas: quotas)
    }

    public var isEmpty: Bool { entries.isEmpty }

    public static func + (a: Principals, b: Principals) -> Principals {
        Principals(entries: a.entries + b.entries, quotas: a.quotas.merging(b.quotas) { $1 })
    }

    private init(entries: [(authorization: [UInt8], name: String)], quotas: [String: PrincipalQuota]) {
        self.entries = entries
        self.quotas = quotas
    }

    /// The principal whose token the `authorization` header carries, checking every entry in
    /// constant time per entry.
    public func principal(authorization: String?) -> String? {
        let given = Array((authorization ?? "").utf8)
        var found: String?
        for entry in entries where constantTimeEqual(given, entry.authorization) { found = entry.name }
        return found
    }
}

/// Requires `authorization: Bearer <token>` of a known principal on every call. The cloud installs
/// it whenever it has tokens (and insists on them when listening beyond loopback).
public struct BearerAuth: ServerInterceptor {
    let principals: Principals

    public init(principals: Principals) { self.principals = principals }

    public init(token: String) { self.init(principals: Principals(tokens: [token: "default"])) }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard principals.principal(authorization: request.metadata.authorization) != nil else {
            throw RPCError(code: .unauthenticated, message: "missing or wrong bearer token")
        }
        return try await next(request, context)
    }
}

extension Metadata {
    /// The first `authorization` value, if any.
    var authorization: String? { self[stringValues: "authorization"].first(where: { _ in true }) }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return diff == 0
}
