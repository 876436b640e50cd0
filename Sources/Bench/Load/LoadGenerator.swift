import Foundation

/// Drives a target with N concurrent users (closed loop) or Poisson arrivals (open loop) for a
/// bounded time, and summarises what the users saw.
package struct LoadGenerator {
    package let target: LoadTarget
    package let sessions: Int

    /// Each of `users` users sends requests back to back (different sessions each) until `duration`
    /// has passed; every user sends at least one.
    package func closedLoop(users: Int, duration: Double) async -> (samples: [RequestSample], wall: Double) {
        let start = Date()
        let deadline = start.addingTimeInterval(duration)
        let target = self.target, sessions = self.sessions
        let samples = await withTaskGroup(of: [RequestSample].self) { group in
            for user in 0..<users {
                group.addTask {
                    var out: [RequestSample] = []
                    var next = user
                    repeat {
                        out.append(await target.run(session: next % sessions))
                        next += users
                    } while Date() < deadline
                    return out
                }
            }
            var all: [RequestSample] = []
            for await part in group { all += part }
            return all
        }
        return (samples, Date().timeIntervalSince(start))
    }

    /// Requests arrive at `rate` per second (exponential gaps, seeded) for `duration` seconds.
    package func openLoop(rate: Double, duration: Double, seed: UInt64 = 1) async -> (samples: [RequestSample], wall: Double) {
        let start = Date()
        var state = seed | 1
        func uniform() -> Double {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Double(state >> 11) / Double(1 << 53)
        }
        var arrivals: [Double] = []
        var t = 0.0
        while true {
            t += -log(1 - uniform()) / rate
            if t > duration { break }
            arrivals.append(t)
        }
        if arrivals.isEmpty { arrivals = [0] }
        let target = self.target, sessions = self.sessions
        let samples = await withTaskGroup(of: RequestSample.self) { group in
            for (k, at) in arrivals.enumerated() {
                group.addTask {
                    let wait = at - Date().timeIntervalSince(start)
                    if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
                    return await target.run(session: k % sessions)
                }
            }
            var all: [RequestSample] = []
            for await sample in group { all.append(sample) }
            return all
        }
        return (samples, Date().timeIntervalSince(start))
    }

    package init(target: LoadTarget, sessions: Int) {
        self.target = target
        self.sessions = sessions
    }
}

/// CPU time and memory of a process, from /proc.
package struct ProcessMeter {
    package let pid: Int32

    /// User + system CPU seconds so far.
    package var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory now (MiB).
    package var rssMiB: Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib / 1024
    }

    package init(pid: Int32) {
        self.pid = pid
    }
}
