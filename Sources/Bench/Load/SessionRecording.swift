import CollabCore
import Foundation
import LLM

/// One real edge session, recorded so it can be replayed against a cloud without edge compute:
/// every message the edge sent (uploads, INFER, VERIFY, TRUNCATE) with the edge's compute time
/// before it, and when each generated token was known relative to the messages.
package struct RecordedSession: Sendable {
    package enum Action: Sendable {
        case open
        case append(firstPosition: Int, rows: Int, payload: [UInt8])
        case infer(position: Int, history: [Int])
        case verify(firstPosition: Int, draft: [Int])
        case truncate(position: Int)

        /// True when the edge waits for the cloud's answer.
        package var waits: Bool {
            if case .append = self { return false }
            return true
        }
    }

    package struct Step: Sendable {
        /// Edge compute between the end of the previous step and this one.
        package var gap: Double
        package var action: Action
    }

    /// When a token was known: `offset` seconds after the end of step `anchor` (-1: the session's start).
    package struct TokenTime: Sendable {
        package var anchor: Int
        package var offset: Double
    }

    package var prompt: [Int]
    package var steps: [Step]
    package var tokens: [TokenTime]
    package var sampling: SamplingParameters
    /// How the generated tokens were decided: cloud round trips (INFER + VERIFY) and edge-decided tokens.
    package var cloudRequests: Int { steps.filter { if case .infer = $0.action { true } else if case .verify = $0.action { true } else { false } }.count }
    package var uploadedBytes: Int { steps.reduce(0) { if case .append(_, _, let p) = $1.action { $0 + p.count } else { $0 } } }

    package init(prompt: [Int], steps: [Step], tokens: [TokenTime], sampling: SamplingParameters) {
        self.prompt = prompt
        self.steps = steps
        self.tokens = tokens
        self.sampling = sampling
    }
}

/// Records what an edge sends through the links it opens (wraps the real connector).
package final class RecordingConnector: CloudConnector, @unchecked Sendable {
    private let inner: CloudConnector
    private let lock = NSLock()
    private var start = Date()
    private var events: [(action: RecordedSession.Action, start: Double, end: Double)] = []

    package init(inner: CloudConnector) { self.inner = inner }

    /// Starts a new recording (times are relative to now).
    package func begin() {
        lock.withLock {
            start = Date()
            events = []
        }
    }

    /// The recording of the session since `begin`, with the token times the runner reported
    /// (seconds since the start of generation, one per token).
    package func finish(prompt: [Int], tokenSeconds: [Double], sampling: SamplingParameters) -> RecordedSession {
        let events = lock.withLock { self.events }
        var steps: [RecordedSession.Step] = []
        var previousEnd = 0.0
        for event in events {
            steps.append(.init(gap: max(0, event.start - previousEnd), action: event.action))
            previousEnd = event.end
        }
        let tokens = tokenSeconds.map { time -> RecordedSession.TokenTime in
            let anchor = events.lastIndex { $0.end <= time } ?? -1
            return .init(anchor: anchor, offset: max(0, time - (anchor >= 0 ? events[anchor].end : 0)))
        }
        return RecordedSession(prompt: prompt, steps: steps, tokens: tokens, sampling: sampling)
    }

    fileprivate func record(_ action: RecordedSession.Action, started: Date) {
        let now = Date()
        lock.withLock {
            events.append((action, started.timeIntervalSince(start), now.timeIntervalSince(start)))
        }
    }

    package func connect() async throws -> CloudLink {
        RecordingLink(inner: try await inner.connect(), recorder: self)
    }
}

private final class RecordingLink: CloudLink, @unchecked Sendable {
    let inner: CloudLink
    let recorder: RecordingConnector

    init(inner: CloudLink, recorder: RecordingConnector) {
        self.inner = inner
        self.recorder = recorder
    }

    var traffic: LinkTraffic { inner.traffic }

    func open(_ request: OpenRequest) async throws -> OpenReply {
        let start = Date()
        defer { recorder.record(.open, started: start) }
        return try await inner.open(request)
    }

    func append(firstPosition: Int, rows: Int, payload: [UInt8]) async throws {
        recorder.record(.append(firstPosition: firstPosition, rows: rows, payload: payload), started: Date())
        try await inner.append(firstPosition: firstPosition, rows: rows, payload: payload)
    }

    func infer(position: Int, sampling: SamplingParameters, topLogprobs: Int, history: [Int]) async throws -> TokenReply {
        let start = Date()
        defer { recorder.record(.infer(position: position, history: history), started: start) }
        return try await inner.infer(position: position, sampling: sampling, topLogprobs: topLogprobs, history: history)
    }

    func verify(firstPosition: Int, draft: [Int], sampling: SamplingParameters) async throws -> TokenReply {
        let start = Date()
        defer { recorder.record(.verify(firstPosition: firstPosition, draft: draft), started: start) }
        return try await inner.verify(firstPosition: firstPosition, draft: draft, sampling: sampling)
    }

    func truncate(to position: Int) async throws {
        let start = Date()
        defer { recorder.record(.truncate(position: position), started: start) }
        try await inner.truncate(to: position)
    }

    func close() async { await inner.close() }
}
