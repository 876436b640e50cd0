import CollabCore
import Foundation
import LLM

/// The edge's side of one cloud session across link failures: connects (resuming the session when
/// the cloud still holds it, else reopening), replays the upload log from where the cloud stands,
/// and after any failure backs off exponentially before trying again. Every request returns nil
/// instead of throwing when the cloud cannot answer, so callers fall back to the edge.
final class CloudSessionClient {
    private let connector: CloudConnector
    private let fingerprint: [UInt8]
    private let splitLayer: Int
    private let options: EdgeOptions
    private var maxPositions = 0

    private var link: CloudLink?
    private var session: SessionID?
    private var sent = 0  // positions of the log sent on the current link
    private var retryAt = Date.distantPast
    private var backoff: Double
    private var finishedTraffic = LinkTraffic()
    private(set) var reconnects = 0

    init(connector: CloudConnector, fingerprint: [UInt8], splitLayer: Int, options: EdgeOptions) {
        self.connector = connector
        self.fingerprint = fingerprint
        self.splitLayer = splitLayer
        self.options = options
        backoff = options.initialBackoffSeconds
    }

    /// Begins a generation: a fresh session of up to `capacity` positions.
    func start(capacity: Int, log: UploadLog) async {
        maxPositions = capacity
        session = nil
        sent = 0
        reconnects = 0
        finishedTraffic = LinkTraffic()
        retryAt = .distantPast
        backoff = options.initialBackoffSeconds
        await ensureLink(log: log)
    }

    /// Bytes and round trips of this generation, over every link it used.
    var traffic: LinkTraffic {
        var t = finishedTraffic
        if let current = link?.traffic { t += current }
        return t
    }

    /// Closes the session and writes its traffic, reconnects and network time into `result`.
    func finish(into result: inout EdgeGenerationResult) async {
        if let link {
            await link.close()
            finishedTraffic += link.traffic
        }
        link = nil
        result.traffic = traffic
        result.reconnects = reconnects
        result.networkSeconds = max(0, traffic.networkSeconds - result.cloudSeconds)
    }

    /// Sends what the cloud has not received yet (reconnecting first if due).
    func upload(log: UploadLog) async {
        if link == nil { await ensureLink(log: log) }
        guard let link, sent < log.count else { return }
        do {
            var position = sent
            while position < log.count {
                let end = min(log.count, position + 1024)
                try await link.append(firstPosition: position, rows: end - position, payload: log.payload(position..<end))
                position = end
            }
            sent = log.count
        } catch {
            fail()
        }
    }

    func infer(position: Int, history: [Int]) async -> TokenReply? {
        guard let link else { return nil }
        do {
            let tail = Array(history.suffix(max(0, options.sampling.repeatLastN)))
            return try await link.infer(position: position, sampling: options.sampling, topLogprobs: 0, history: tail)
        } catch {
            fail()
            return nil
        }
    }

    /// VERIFY; on success both sides hold positions up to firstPosition + accepted (the cloud drops
    /// the rejected rest itself), so the log pointer follows.
    func verify(firstPosition: Int, draft: [Int]) async -> TokenReply? {
        guard let link else { return nil }
        do {
            let reply = try await link.verify(firstPosition: firstPosition, draft: draft, sampling: options.sampling)
            sent = min(sent, firstPosition + reply.accepted + 1)
            return reply
        } catch {
            fail()
            return nil
        }
    }

    /// The edge dropped log positions at and after `count`: the cloud must not keep them either.
    func truncate(to count: Int) async {
        guard sent > count else { return }
        sent = count
        guard let link else { return }
        do { try await link.truncate(to: count) } catch { fail() }
    }

    /// Connects (or reconnects, resuming the session when the cloud still has it) and replays what
    /// the cloud is missing. Does nothing while backing off after a failure.
    private func ensureLink(log: UploadLog) async {
        guard link == nil, Date() >= retryAt else { return }
        do {
            let newLink = try await connector.connect()
            var request = OpenRequest(fingerprint: fingerprint, splitLayer: splitLayer, wire: options.wire,
                                      maxPositions: maxPositions, resume: session)
            var reply: OpenReply
            do {
                reply = try await newLink.open(request)
            } catch let error as CollabError where error.code == .unknownSession {
                request.resume = nil  // the cloud lost the session: start over and replay everything
                reply = try await newLink.open(request)
            }
            if session != nil { reconnects += 1 }
            link = newLink
            session = reply.session
            sent = min(reply.positionsHeld, log.count)
            if sent < reply.positionsHeld { try await newLink.truncate(to: sent) }
            backoff = options.initialBackoffSeconds
            await upload(log: log)
        } catch {
            fail()
        }
    }

    /// Drops the link and schedules a reconnect with exponential backoff.
    private func fail() {
        if let link { finishedTraffic += link.traffic }
        link = nil
        retryAt = Date().addingTimeInterval(backoff)
        backoff = min(backoff * 2, options.maxBackoffSeconds)
    }
}
