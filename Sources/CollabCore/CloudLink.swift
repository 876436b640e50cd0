import LLM

/// The edge's view of a cloud session, whatever carries it (gRPC stream, in-process call).
/// `append` may return before the cloud has processed the states (it is fire-and-forget on a
/// stream); messages of one link are delivered in order, so a later `infer` sees them.
public protocol CloudLink: AnyObject, Sendable {
    func open(_ request: OpenRequest) async throws -> OpenReply
    func append(firstPosition: Int, rows: Int, payload: [UInt8]) async throws
    func infer(position: Int, sampling: SamplingParameters, topLogprobs: Int, history: [Int]) async throws -> TokenReply
    /// VERIFY: the cloud checks `draft` (the edge's tokens for positions firstPosition+1...) in one
    /// pass and answers with how many it accepted and its own token after them.
    func verify(firstPosition: Int, draft: [Int], sampling: SamplingParameters) async throws -> TokenReply
    func truncate(to position: Int) async throws
    func close() async
    /// Bytes sent and received so far, including framing.
    var traffic: LinkTraffic { get }
}

/// Opens cloud sessions (a new gRPC stream, or an in-process link in tests).
public protocol CloudConnector: Sendable {
    func connect() async throws -> CloudLink
    /// Opens a link for the session whose routing key is `routingKey`: a load balancer in front of
    /// several cloud replicas sends every stream carrying the same key to the same replica.
    func connect(routingKey: String) async throws -> CloudLink
}

extension CloudConnector {
    /// Connectors without a balancer in between (in-process links) ignore the key.
    public func connect(routingKey: String) async throws -> CloudLink { try await connect() }
}

/// The routing key of one edge session: 128 random bits as 32 lowercase hex digits, made before
/// OPEN and kept across reconnects; sent as the `x-collm-session` header on every stream.
public enum RoutingKey {
    public static let header = "x-collm-session"

    public static func random() -> String { SessionID.random().description }
}
