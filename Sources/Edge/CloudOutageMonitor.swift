import Foundation

/// Follows whether the cloud answers, across generations (one per `generate`, many per `serve`), so
/// that a degradation episode is announced once when it begins and once when it ends, instead of
/// only showing up as `:degraded` token sources.
public final class CloudOutageMonitor: @unchecked Sendable {
    public enum Event: Sendable {
        /// The cloud stopped answering at `since`; tokens are decided by the edge (degraded).
        case began(since: Date, reason: String)
        /// The cloud answered again at `at`, after the episode that began at `since`.
        case ended(since: Date, at: Date)
    }

    private let lock = NSLock()
    private var episodeStart: Date?
    private var count = 0
    private let announce: @Sendable (Event) -> Void

    public init(announce: @escaping @Sendable (Event) -> Void) { self.announce = announce }

    /// When the current episode began; nil while the cloud answers.
    public var degradedSince: Date? { lock.withLock { episodeStart } }

    /// Episodes begun so far.
    public var episodes: Int { lock.withLock { count } }

    /// The cloud failed to answer (connect, OPEN or a request).
    func cloudFailed(reason: String) {
        let now = Date()
        let began: Bool = lock.withLock {
            guard episodeStart == nil else { return false }
            episodeStart = now
            count += 1
            return true
        }
        if began { announce(.began(since: now, reason: reason)) }
    }

    /// The cloud answered.
    func cloudAnswered() {
        let now = Date()
        let since: Date? = lock.withLock {
            defer { episodeStart = nil }
            return episodeStart
        }
        if let since { announce(.ended(since: since, at: now)) }
    }
}

extension CloudOutageMonitor.Event {
    /// One line for a log or a terminal, with local wall-clock times.
    public var message: String {
        let clock = CloudOutageMonitor.clock
        switch self {
        case .began(let since, let reason):
            return "collm: cloud unreachable since \(clock(since)) (\(reason)); the edge decides every token, "
                + "marked degraded, until it answers again"
        case .ended(let since, let at):
            return "collm: cloud answering again at \(clock(at)) after \(String(format: "%.1f", at.timeIntervalSince(since))) s "
                + "of degradation (since \(clock(since)))"
        }
    }
}

extension CloudOutageMonitor {
    /// Local wall-clock time to the millisecond, as outage messages print it.
    public static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        return formatter.string(from: date)
    }
}
