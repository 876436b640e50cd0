import CollabTransport
import Foundation
import XCTest

/// Issue 14: three `collm cloud` replicas behind a real balancer (HAProxy, or nginx), started by
/// scripts/cluster.sh, and eight edges at once with greedy decoding, an f32 wire, exits that never
/// fire and `--on-cloud-loss wait`. Killing a replica that holds sessions, or restarting every
/// replica in turn, must not change one token: every output equals the full model's.
final class ClusterProcessTests: XCTestCase {
    /// Prompts whose answers run past maxTokens (no early EOS), so every session lasts the whole run.
    static let prompts = [
        "Write a short story about a robot.", "Explain how rain forms.", "Describe your favourite city.",
        "List some tips for learning to cook.", "Explain photosynthesis to a child.", "Write a poem about autumn.",
        "Why do people keep pets?", "Describe a day at the beach.",
    ]
    static let maxTokens = 32

    /// The full model's tokens per prompt (mode local), computed once for every test.
    static let references: Result<[String: [Int]], Error> = Result {
        let runs = try prompts.map { prompt in
            try BackgroundCollm(["generate", "--chat", "--prompt", prompt, "--mode", "local", "--max-tokens", "\(maxTokens)",
                                 "--threads", "1", "--json"])
        }
        var tokens: [String: [Int]] = [:]
        for (prompt, run) in zip(prompts, runs) {
            let r = run.wait(timeout: 300)
            guard r.status == 0, let t = try CollmProcess.json(r.out)["tokens"] as? [Int], !t.isEmpty else {
                throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "reference for \(prompt) failed: \(r.err)"])
            }
            tokens[prompt] = t
        }
        return tokens
    }

    static func edgeArguments(_ prompt: String, cloud: String) -> [String] {
        ["generate", "--chat", "--prompt", prompt, "--mode", "collab", "--cloud", cloud, "--wire", "f32",
         "--exits", "8", "--threshold", "1.5", "--calibration", "none", "--max-tokens", "\(maxTokens)", "--threads", "1",
         "--on-cloud-loss", "wait", "--cloud-wait-s", "120", "--json"]
    }

    func testKilledReplicaBehindHAProxyLosesNoToken() async throws {
        try await killOneReplicaMidGeneration(balancer: "haproxy")
    }

    func testKilledReplicaBehindNginxLosesNoToken() async throws {
        try await killOneReplicaMidGeneration(balancer: "nginx")
    }

    /// Eight edges; once every session is open, SIGKILL the replica holding the most; every edge
    /// finishes with the full model's tokens, and the killed replica's sessions finish elsewhere
    /// after a RESYNC and a replay of their upload logs.
    private func killOneReplicaMidGeneration(balancer: String) async throws {
        let references = try Self.references.get()
        let cluster = try Cluster.up(balancer: balancer, cloudArguments: ["--threads", "1", "--no-full-model"])
        defer { cluster.down() }
        let edges = try Self.prompts.map { try BackgroundCollm(Self.edgeArguments($0, cloud: cluster.address)) }
        defer { edges.forEach { $0.terminate() } }
        // Health per replica carries its memory (the model's weights alone are ~50 MiB).
        let health = try await CloudHealth.probe(address: "127.0.0.1:\(cluster.basePort + 1)", token: nil)
        XCTAssertEqual(health.status, "ok")
        XCTAssertGreaterThan(health.rssBytes, 50 << 20)

        // Watch the replicas (Health) until every edge holds its session.
        var peak = [Int](repeating: 0, count: cluster.replicas)
        var current = peak
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            current = await cluster.sessions()
            peak = zip(peak, current).map { max($0, $1) }
            if current.reduce(0, +) >= Self.prompts.count || edges.contains(where: { !$0.isRunning }) { break }
            try await Task.sleep(nanoseconds: 30_000_000)
        }
        // Usually all 8 are open at once; an edge may also finish before the slowest one opens.
        let allOpen = current.reduce(0, +) >= Self.prompts.count
        XCTAssertGreaterThanOrEqual(peak.filter { $0 > 0 }.count, 2, "sessions per replica: \(peak)")
        let victim = current.indices.max { current[$0] < current[$1] }!
        let held = current[victim]
        XCTAssertGreaterThan(held, 0)
        let pid = try cluster.pid(victim + 1)
        kill(pid, SIGKILL)
        print("cluster(\(balancer)): sessions per replica \(current); SIGKILL replica \(victim + 1) (pid \(pid), \(held) sessions)")

        var moved: [(recovery: [Double], replay: Int)] = []
        for (prompt, edge) in zip(Self.prompts, edges) {
            let r = edge.wait(timeout: 300)
            XCTAssertEqual(r.status, 0, r.err)
            let json = try CollmProcess.json(r.out)
            XCTAssertEqual(json["tokens"] as? [Int], references[prompt], "\(prompt): not the full model's tokens")
            let sources = try XCTUnwrap(json["sources"] as? [String])
            XCTAssertTrue(sources.allSatisfy { $0 == "cloud" }, "\(prompt): \(sources)")
            let failover = try XCTUnwrap(json["failover"] as? [String: Any])
            XCTAssertEqual(failover["policy"] as? String, "wait")
            if let resyncs = failover["resyncs"] as? Int, resyncs > 0 {
                let replay = try XCTUnwrap(failover["replay_bytes"] as? Int)
                let recovery = try XCTUnwrap(failover["recovery_seconds"] as? [Double])
                XCTAssertGreaterThan(replay, 0, "\(prompt): a RESYNC replays the upload log")
                XCTAssertFalse(recovery.isEmpty, "\(prompt): the cloud answered again")
                moved.append((recovery, replay))
            }
        }
        // The sessions that were on the killed replica (and only those) moved with a replay.
        XCTAssertGreaterThanOrEqual(moved.count, 1, "no session moved after the kill")
        if allOpen { XCTAssertLessThanOrEqual(moved.count, held, "more sessions moved than the killed replica held") }
        let recoveries = moved.flatMap(\.recovery).sorted()
        let seconds = recoveries.map { String(format: "%.3f", $0) }.joined(separator: ", ")
        print("cluster(\(balancer)): \(moved.count) sessions moved; recovery (loss to next cloud token) [\(seconds)] s; "
              + "replay bytes \(moved.map(\.replay))")

        // Every session was closed on the replicas that finished them.
        var left = await cluster.sessions()
        let closeDeadline = Date().addingTimeInterval(10)
        while left.reduce(0, +) > 0 && Date() < closeDeadline {
            try await Task.sleep(nanoseconds: 100_000_000)
            left = await cluster.sessions()
        }
        XCTAssertEqual(left.reduce(0, +), 0, "sessions left open: \(left)")
    }

    func testScaleOutArgumentsAreCheckedClearly() throws {
        let policy = try CollmProcess.run(["generate", "--prompt", "hi", "--mode", "collab", "--cloud", "127.0.0.1:1",
                                           "--on-cloud-loss", "maybe"])
        XCTAssertNotEqual(policy.status, 0)
        XCTAssertTrue(policy.err.contains("'degrade' and 'wait'"), policy.err)
        let wait = try CollmProcess.run(["generate", "--prompt", "hi", "--cloud-wait-s=-1"])
        XCTAssertNotEqual(wait.status, 0)
        XCTAssertTrue(wait.err.contains("--cloud-wait-s must be a number >= 0"), wait.err)
        let serve = try CollmProcess.run(["serve", "--on-cloud-loss", "later"])
        XCTAssertNotEqual(serve.status, 0)
        XCTAssertTrue(serve.err.contains("--on-cloud-loss"), serve.err)
        let drain = try CollmProcess.run(["cloud", "--drain-s=-1"])
        XCTAssertNotEqual(drain.status, 0)
        XCTAssertTrue(drain.err.contains("--drain-s must be a number >= 0"), drain.err)
        let health = try CollmProcess.run(["health", "--cloud", "127.0.0.1:1", "--timeout", "5"])
        XCTAssertNotEqual(health.status, 0)
        let address = try CollmProcess.run(["health", "--cloud", "nohost"])
        XCTAssertTrue(address.err.contains("HOST:PORT"), address.err)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("collm-cluster-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cluster = Cluster(dir: dir, basePort: 50051, replicas: 3)
        for (arguments, message) in [(["up", "--balancer", "envoy"], "--balancer must be haproxy or nginx"),
                                     (["up", "--replicas", "0"], "--replicas must be 1..64"),
                                     (["up", "--base-port", "65535"], "--base-port must leave room"),
                                     (["restart", "1"], "no cluster in"),
                                     (["scale"], "unknown command scale")] {
            let r = try cluster.script(arguments, timeout: 30)
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertTrue(r.err.contains(message), "\(arguments): \(r.err)")
        }
    }

    /// Eight edge slots generate in rounds while every replica is restarted gracefully, one at a
    /// time (SIGTERM: drain, exit, start again): every output is complete and the full model's.
    func testRollingRestartKeepsEveryOutputExact() async throws {
        let references = try Self.references.get()
        let cluster = try Cluster.up(balancer: "haproxy", cloudArguments: ["--threads", "1", "--no-full-model", "--drain-s", "1"])
        defer { cluster.down() }
        let results = Results()
        let group = DispatchGroup()
        for prompt in Self.prompts {
            DispatchQueue.global().async(group: group) {
                // At least one generation per slot; more until the rolling restart is over.
                repeat {
                    do {
                        let r = try BackgroundCollm(Self.edgeArguments(prompt, cloud: cluster.address)).wait(timeout: 300)
                        results.add(prompt: prompt, status: r.status, out: r.out, err: r.err)
                    } catch {
                        results.add(prompt: prompt, status: -1, out: "", err: "\(error)")
                    }
                } while !results.restartDone
            }
        }
        // Restart once sessions are open, each replica in turn.
        let deadline = Date().addingTimeInterval(120)
        while await cluster.sessions().reduce(0, +) == 0 && Date() < deadline {
            try await Task.sleep(nanoseconds: 30_000_000)
        }
        for k in 1...cluster.replicas {
            let before = await cluster.sessions()
            let r = try cluster.script(["restart", "\(k)"], timeout: 300)
            XCTAssertEqual(r.status, 0, "restart \(k): \(r.err)")
            XCTAssertFalse(r.err.contains("did not exit"), "replica \(k) did not drain and exit on SIGTERM: \(r.err)")
            // The replica drained and stopped cleanly before it started again.
            let log = try String(contentsOf: cluster.dir.appendingPathComponent("replica-\(k).log"), encoding: .utf8)
            XCTAssertTrue(log.contains("draining:") && log.contains("collm cloud stopped"), log)
            print("cluster(rolling): restarted replica \(k) (sessions before: \(before))")
        }
        results.restartDone = true
        let finished = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: group.wait(timeout: .now() + 600) == .success) }
        }
        XCTAssertTrue(finished, "edges did not finish")

        let runs = results.all
        XCTAssertGreaterThanOrEqual(runs.count, Self.prompts.count)
        var (resyncs, reconnects) = (0, 0)
        for run in runs {
            XCTAssertEqual(run.status, 0, run.err)
            guard run.status == 0, let json = try? CollmProcess.json(run.out) else { continue }
            XCTAssertEqual(json["tokens"] as? [Int], references[run.prompt], "\(run.prompt): not the full model's tokens")
            XCTAssertTrue((json["sources"] as? [String] ?? []).allSatisfy { $0 == "cloud" }, "\(run.prompt): \(json["sources"] ?? "")")
            let failover = json["failover"] as? [String: Any]
            resyncs += failover?["resyncs"] as? Int ?? 0
            reconnects += failover?["reconnects"] as? Int ?? 0
        }
        print("cluster(rolling): \(runs.count) generations during the rolling restart, \(reconnects) reconnects, \(resyncs) RESYNCs")
    }
}

/// Outputs of edge runs from several threads.
private final class Results: @unchecked Sendable {
    struct Run { var prompt: String; var status: Int32; var out: String; var err: String }
    private let lock = NSLock()
    private var runs: [Run] = []
    private var done = false

    func add(prompt: String, status: Int32, out: String, err: String) {
        lock.withLock { runs.append(Run(prompt: prompt, status: status, out: out, err: err)) }
    }

    var all: [Run] { lock.withLock { runs } }

    var restartDone: Bool {
        get { lock.withLock { done } }
        set { lock.withLock { done = newValue } }
    }
}

/// A `collm` child process running in the background, its output in files.
final class BackgroundCollm: @unchecked Sendable {
    let process = Process()
    private let outURL: URL
    private let errURL: URL

    init(_ arguments: [String], executable: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: try executable ?? CollmProcess.binary())
        process.arguments = arguments
        let dir = FileManager.default.temporaryDirectory
        outURL = dir.appendingPathComponent("collm-bg-out-\(UUID().uuidString)")
        errURL = dir.appendingPathComponent("collm-bg-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// Waits up to `timeout` seconds (then kills it); returns (status, stdout, stderr).
    func wait(timeout: Double) -> (status: Int32, out: String, err: String) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        var timedOut = false
        if process.isRunning {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        var err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        if timedOut { err += "\n[timed out after \(timeout) s: \(process.arguments ?? [])]" }
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
        return (timedOut ? -1 : process.terminationStatus, out, err)
    }

    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A cluster started by scripts/cluster.sh in a temporary folder.
struct Cluster: Sendable {
    let dir: URL
    let basePort: Int
    let replicas: Int

    var address: String { "127.0.0.1:\(basePort)" }

    static func up(balancer: String, replicas: Int = 3, cloudArguments: [String]) throws -> Cluster {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("collm-cluster-\(UUID().uuidString)")
        var lastError = ""
        for _ in 0..<3 {
            let base = Int.random(in: 20000...60000)
            let cluster = Cluster(dir: dir, basePort: base, replicas: replicas)
            let r = try cluster.script(["up", "--replicas", "\(replicas)", "--balancer", balancer, "--base-port", "\(base)",
                                        "--collm", try CollmProcess.binary(), "--timeout", "180", "--"] + cloudArguments,
                                       timeout: 900)  // may apt-get install the balancer first
            if r.status == 0 {
                XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), cluster.address, "the address for edges")
                return cluster
            }
            lastError = r.err
            guard r.err.contains("already in use") else { break }
        }
        XCTFail("cluster.sh up failed: \(lastError)")
        throw CocoaError(.executableLoad)
    }

    /// Runs scripts/cluster.sh with this cluster's folder.
    func script(_ arguments: [String], timeout: Double) throws -> (status: Int32, out: String, err: String) {
        let script = CollmProcess.repoRoot.appendingPathComponent("scripts/cluster.sh").path
        let withDir = [arguments[0], "--dir", dir.path] + arguments.dropFirst()
        return try BackgroundCollm(withDir, executable: script).wait(timeout: timeout)
    }

    func pid(_ replica: Int) throws -> Int32 {
        let text = try String(contentsOf: dir.appendingPathComponent("replica-\(replica).pid"), encoding: .utf8)
        return try XCTUnwrap(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Open sessions per replica (Health), 0 for a replica that does not answer within 5 s.
    func sessions() async -> [Int] {
        var counts: [Int] = []
        for k in 1...replicas {
            let address = "127.0.0.1:\(basePort + k)"
            let health = await withTaskGroup(of: CloudHealth?.self) { group in
                group.addTask { try? await CloudHealth.probe(address: address, token: nil) }
                group.addTask {
                    try? await Task.sleep(nanoseconds: 5_000_000_000)
                    return nil
                }
                defer { group.cancelAll() }
                return await group.next() ?? nil
            }
            counts.append(health?.sessions ?? 0)
        }
        return counts
    }

    func down() {
        _ = try? script(["down"], timeout: 60)
        try? FileManager.default.removeItem(at: dir)
    }
}
