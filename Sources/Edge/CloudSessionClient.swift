import CollabCore
import Foundation
import LLM

/// The edge's side of one cloud session across link failures: connects (resuming the session when
/// the cloud still holds it, else reopening), replays the upload log from where the cloud stands,
/// and after any failure backs off exponentially before trying again. Every request returns nil
/// instead of throwing when the cloud cannot answer, so callers fall back to the edge; with the
/// `.wait` policy a request first holds, reconnecting, until the cloud answers or the wait is over.
/// Only a refusal (`CollabError.isRefusal`: wrong token, TLS mismatch, another model or split) is
/// thrown, as `CloudRefusal`: degrading would hide a misconfiguration behind edge-only answers.
///
/// Every stream of the session carries the same routing key, so a balancer in front of several
/// cloud replicas keeps the session on one replica. When that replica is gone, the reconnect lands
/// on another one, which does not know the session (UNKNOWN_SESSION, the RESYNC answer): the edge
/// reopens there and replays its whole log.
final class CloudSessionClient {
    private let connector: CloudConnector
    private let fingerprint: [UInt8]
    private let splitLayer: Int
    private let options: EdgeOptions
    private var maxPositions = 0

    private var link: CloudLink?
    private var session: SessionID?
    private var routingKey = RoutingKey.random()
    private var sent = 0  // positions of the log sent on the current link
    private var retryAt = Date.distantPast
    private var backoff: Double
    private var finishedTraffic = LinkTraffic()
    private(set) var reconnects = 0
    private var resyncs = 0
    private var replayBytes = 0
    /// When the cloud stopped answering (nil while it answers).
    private var outageStart: Date?
    private var recoveries: [Double] = []
    private var waited = 0.0

    init(connector: CloudConnector, fingerprint: [UInt8], splitLayer: Int, options: EdgeOptions) {
        self.connector = connector
        self.fingerprint = fingerprint
        self.splitLayer = splitLayer
        self.options = options
        backoff = options.initialBackoffSeconds
    }

    /// Begins a generation: a fresh session of up to `capacity` positions, with a fresh routing key.
    func start(capacity: Int, log: UploadLog) async throws {
        maxPositions = capacity
        session = nil
        routingKey = RoutingKey.random()
        sent = 0
        reconnects = 0
        resyncs = 0
        replayBytes = 0
        outageStart = nil
        recoveries = []
        waited = 0
        finishedTraffic = LinkTraffic()
        retryAt = .distantPast
        backoff = options.initialBackoffSeconds
        try await ensureLink(log: log)
    }

    /// Bytes and round trips of this generation, over every link it used.
    var traffic: LinkTraffic {
        var t = finishedTraffic
        if let current = link?.traffic { t += current }
        return t
    }

    /// Closes the session and writes its traffic, reconnects and network time into `result`.
    func finish(into generation: inout EdgeGeneration) async {
        if let link {
            await link.close()
            finishedTraffic += link.traffic
        }
        link = nil
        generation.result.traffic = traffic
        generation.failover = FailoverStatistics(reconnects: reconnects, resyncs: resyncs, replayBytes: replayBytes,
                                                 recoverySeconds: recoveries, cloudWaitSeconds: waited)
    }

    /// Closes the session of an abandoned generation (cancelled, or ended by an error).
    func close() async {
        if let link { await link.close() }
        link = nil
    }

    /// Sends what the cloud has not received yet (reconnecting first if due).
    func upload(log: UploadLog) async throws {
        if link == nil { try await ensureLink(log: log) }
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
            try fail(error)
        }
    }

    func infer(position: Int, history: [Int], log: UploadLog) async throws -> TokenReply? {
        let tail = Array(history.suffix(max(0, options.sampling.repeatLastN)))
        let sampling = options.sampling
        return try await request(log: log) {
            try await $0.infer(position: position, sampling: sampling, topLogprobs: 0, history: tail)
        }
    }

    /// VERIFY; on success both sides hold positions up to firstPosition + accepted (the cloud drops
    /// the rejected rest itself), so the log pointer follows.
    func verify(firstPosition: Int, draft: [Int], log: UploadLog) async throws -> TokenReply? {
        let sampling = options.sampling
        let reply = try await request(log: log) { try await $0.verify(firstPosition: firstPosition, draft: draft, sampling: sampling) }
        if let reply { sent = min(sent, firstPosition + reply.accepted + 1) }
        return reply
    }

    /// The edge dropped log positions at and after `count`: the cloud must not keep them either.
    func truncate(to count: Int) async throws {
        guard sent > count else { return }
        sent = count
        guard let link else { return }
        do { try await link.truncate(to: count) } catch { try fail(error) }
    }

    /// One request on the current link. When the cloud cannot answer: nil with `.degrade`; with
    /// `.wait`, reconnect (with backoff; the log is replayed to whichever replica answers) and ask
    /// again, until the cloud answers or `cloudWaitSeconds` have passed since the outage began.
    private func request(log: UploadLog, _ body: (CloudLink) async throws -> TokenReply) async throws -> TokenReply? {
        let entered = Date()
        var failedBefore = false
        while true {
            try Task.checkCancellation()  // a held request of a client that left must not spin until the wait is over
            if link == nil { try await ensureLink(log: log) }
            if let link {
                let attempt = Date()
                do {
                    let reply = try await body(link)
                    options.outageMonitor?.cloudAnswered()
                    if failedBefore { waited += attempt.timeIntervalSince(entered) }
                    if let start = outageStart {
                        recoveries.append(Date().timeIntervalSince(start))
                        outageStart = nil
                    }
                    return reply
                } catch {
                    try fail(error)
                }
            }
            failedBefore = true
            guard options.onCloudLoss == .wait, let start = outageStart,
                  Date() < start.addingTimeInterval(options.cloudWaitSeconds) else {
                if options.onCloudLoss == .wait { waited += Date().timeIntervalSince(entered) }
                return nil
            }
            let until = min(retryAt, start.addingTimeInterval(options.cloudWaitSeconds))
            let pause = until.timeIntervalSinceNow
            if pause > 0 { try? await Task.sleep(nanoseconds: UInt64(pause * 1e9)) }
        }
    }

    /// Connects (or reconnects, resuming the session when the cloud still has it) and replays what
    /// the cloud is missing. Does nothing while backing off after a failure.
    private func ensureLink(log: UploadLog) async throws {
        guard link == nil, Date() >= retryAt else { return }
        do {
            let newLink = try await connector.connect(routingKey: routingKey)
            var request = OpenRequest(fingerprint: fingerprint, splitLayer: splitLayer, wire: options.wire,
                                      maxPositions: maxPositions, resume: session)
            var reply: OpenReply
            do {
                reply = try await newLink.open(request)
            } catch let error as CollabError where error.code == .unknownSession || error.code == .resync {
                // RESYNC: this replica does not know the session (it restarted, or the balancer sent the
                // key elsewhere because the old replica is gone): open it afresh and replay everything.
                request.resume = nil
                reply = try await newLink.open(request)
                resyncs += 1
            }
            let reconnected = session != nil
            if reconnected { reconnects += 1 }
            link = newLink
            session = reply.session
            sent = min(reply.positionsHeld, log.count)
            if sent < reply.positionsHeld { try await newLink.truncate(to: sent) }
            // The replay: what this cloud lacks of the log (all of it after a RESYNC).
            if reconnected && sent < log.count { replayBytes += log.payload(sent..<log.count).count }
            backoff = options.initialBackoffSeconds
            options.outageMonitor?.cloudAnswered()
            try await upload(log: log)
        } catch let error as CollabError where error.code == .invalidArgument && link == nil {
            // OPEN refused as invalid (another protocol version): every reconnect would be refused too.
            throw CloudRefusal(error)
        } catch {
            try fail(error)
        }
    }

    /// Drops the link and schedules a reconnect with exponential backoff. While waiting, the first
    /// reconnect of an outage is immediate (behind a balancer it usually reaches a live replica at
    /// once) and later ones are at most 2 s apart: a held generation gains nothing from longer pauses.
    /// A refusal is thrown instead: waiting does not fix a misconfiguration.
    private func fail(_ error: Error) throws {
        if let link { finishedTraffic += link.traffic }
        link = nil
        if let refusal = error as? CloudRefusal { throw refusal }
        if let error = error as? CollabError, error.isRefusal { throw CloudRefusal(error) }
        options.outageMonitor?.cloudFailed(reason: "\(error)")
        let newOutage = outageStart == nil
        if newOutage { outageStart = Date() }
        retryAt = newOutage && options.onCloudLoss == .wait ? Date() : Date().addingTimeInterval(backoff)
        let ceiling = options.onCloudLoss == .wait ? min(2, options.maxBackoffSeconds) : options.maxBackoffSeconds
        backoff = min(backoff * 2, ceiling)
    }
}
