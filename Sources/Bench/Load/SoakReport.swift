import CollabCore
import CollabTransport
import Foundation
import LLM

/// Requests spread over several targets in turn: request k goes to target k mod T, on its
/// session k / T (a soak mixes collab, spec and cloud-only users against one cloud).
package struct MixedTarget: LoadTarget {
    package let targets: [LoadTarget]

    package init(targets: [LoadTarget]) { self.targets = targets }

    package func run(session index: Int) async -> RequestSample {
        await targets[index % targets.count].run(session: index / targets.count)
    }
}

/// One look at the cloud process during a soak.
package struct SoakSample: Codable, Sendable {
    package var t_s: Double
    package var rss_mib: Double
    package var open_fds: Int
    package var sessions: Int?

    package init(t_s: Double, rss_mib: Double, open_fds: Int, sessions: Int?) {
        self.t_s = t_s
        self.rss_mib = rss_mib
        self.open_fds = open_fds
        self.sessions = sessions
    }
}

/// What a soak found: every request's fate, and the cloud's memory and descriptors over time.
package struct SoakReport: Codable {
    package var minutes: Double
    package var users: Int
    package var modes: [String]
    package var requests: Int
    package var errors: Int
    package var first_error: String?
    package var tokens: Int
    package var tokens_per_s: Double
    /// RSS after the first minute (warm-up), at the end, and its largest sample after warm-up.
    package var rss_after_warmup_mib: Double
    package var rss_end_mib: Double
    package var rss_max_after_warmup_mib: Double
    package var open_fds_max: Int
    package var samples: [SoakSample]

    package init(minutes: Double, users: Int, modes: [String], requests: Int, errors: Int, first_error: String?, tokens: Int,
                 tokens_per_s: Double, rss_after_warmup_mib: Double, rss_end_mib: Double, rss_max_after_warmup_mib: Double,
                 open_fds_max: Int, samples: [SoakSample]) {
        (self.minutes, self.users, self.modes, self.requests, self.errors, self.first_error) = (minutes, users, modes, requests, errors, first_error)
        (self.tokens, self.tokens_per_s, self.rss_after_warmup_mib, self.rss_end_mib) = (tokens, tokens_per_s, rss_after_warmup_mib, rss_end_mib)
        (self.rss_max_after_warmup_mib, self.open_fds_max, self.samples) = (rss_max_after_warmup_mib, open_fds_max, samples)
    }

    package var markdown: String {
        var lines = [String(format: "Soak: %d users (%@ in turn) for %.0f min against one cloud: %d requests, %d errors, %.1f tok/s",
                            users, modes.joined(separator: ", "), minutes, requests, errors, tokens_per_s),
                     String(format: "Cloud RSS: %.0f MiB after the first minute, %.0f MiB at the end (largest after warm-up %.0f MiB); open descriptors at most %d",
                            rss_after_warmup_mib, rss_end_mib, rss_max_after_warmup_mib, open_fds_max),
                     "", "| t (s) | RSS (MiB) | open fds | sessions |", "|---|---|---|---|"]
        lines += samples.map { String(format: "| %.0f | %.0f | %d | %@ |", $0.t_s, $0.rss_mib, $0.open_fds, $0.sessions.map(String.init) ?? "—") }
        if let first_error { lines.append("\nfirst error: \(first_error)") }
        return lines.joined(separator: "\n")
    }
}

extension ProcessMeter {
    /// Descriptors the process has open now.
    package var openFileDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }
}

