import CollabCore
import Foundation
import LLM

/// A CloudLink that calls a CloudEngine in the same process: the protocol's semantics without a
/// network, for tests and for measuring what the protocol itself costs. Byte counts use the
/// payload sizes plus a fixed per-message framing estimate.
public final class InProcessLink: CloudLink, @unchecked Sendable {
    public static let framingBytes = 32
    private let engine: CloudEngine
    private let owner: String
    private let alive: @Sendable () -> Bool
    private var session: SessionID?
    private let lock = NSLock()
    private var counters = LinkTraffic()

    public init(engine: CloudEngine, owner: String, alive: @escaping @Sendable () -> Bool = { true }) {
        self.engine = engine
        self.owner = owner
        self.alive = alive
    }

    public var traffic: LinkTraffic { lock.withLock { counters } }

    private func count(up: Int, down: Int, roundTrip: Bool, seconds: Double = 0) {
        lock.withLock {
            counters.bytesUp += up + Self.framingBytes
            counters.bytesDown += down + Self.framingBytes
            if roundTrip { counters.roundTrips += 1 }
            counters.networkSeconds += seconds
        }
    }

    private func current() throws -> SessionID {
        guard alive() else { throw CollabError(.unavailable, "link broken") }
        guard let session else { throw CollabError(.invalidArgument, "no open session on this link") }
        return session
    }

    public func open(_ request: OpenRequest) async throws -> OpenReply {
        guard alive() else { throw CollabError(.unavailable, "link broken") }
        let reply = try await engine.open(request, owner: owner)
        session = reply.session
        count(up: request.fingerprint.count + 16, down: 16, roundTrip: true)
        return reply
    }

    public func append(firstPosition: Int, rows: Int, payload: [UInt8]) async throws {
        _ = try await engine.append(try current(), owner: owner, firstPosition: firstPosition, rows: rows, payload: payload)
        count(up: payload.count, down: 0, roundTrip: false)
    }

    public func infer(position: Int, sampling: SamplingParameters, topLogprobs: Int, history: [Int]) async throws -> TokenReply {
        let start = Date()
        let reply = try await engine.infer(InferJob(session: try current(), owner: owner, position: position,
                                                    sampling: sampling, topLogprobs: topLogprobs, history: history))
        count(up: 8 + history.count * 4, down: 16 + reply.top.count * 8, roundTrip: true,
              seconds: Date().timeIntervalSince(start))
        return reply
    }

    public func verify(firstPosition: Int, draft: [Int], sampling: SamplingParameters) async throws -> TokenReply {
        let start = Date()
        let reply = try await engine.infer(InferJob(session: try current(), owner: owner, position: firstPosition,
                                                    sampling: sampling, draft: draft))
        count(up: 8 + draft.count * 4, down: 20, roundTrip: true, seconds: Date().timeIntervalSince(start))
        return reply
    }

    public func truncate(to position: Int) async throws {
        _ = try await engine.truncate(try current(), owner: owner, to: position)
        count(up: 8, down: 8, roundTrip: true)
    }

    public func close() async {
        if let session { try? await engine.close(session, owner: owner) }
        session = nil
    }
}

/// Connects InProcessLinks to one engine; `available` = false simulates an unreachable cloud.
public final class InProcessConnector: CloudConnector, @unchecked Sendable {
    public let engine: CloudEngine
    public let owner: String
    private let lock = NSLock()
    private var isAvailable = true
    private var linkGeneration = 0

    public init(engine: CloudEngine, owner: String) {
        self.engine = engine
        self.owner = owner
    }

    public var available: Bool {
        get { lock.withLock { isAvailable } }
        set { lock.withLock { isAvailable = newValue } }
    }

    /// Makes every link opened so far fail from now on (a dropped connection).
    public func breakLinks() { lock.withLock { linkGeneration += 1 } }

    public func connect() async throws -> CloudLink {
        guard available else { throw CollabError(.unavailable, "cloud unreachable") }
        let generation = lock.withLock { linkGeneration }
        return InProcessLink(engine: engine, owner: owner) { [self] in
            lock.withLock { linkGeneration == generation && isAvailable }
        }
    }
}
