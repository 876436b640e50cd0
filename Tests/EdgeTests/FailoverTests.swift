import CollabCore
import Foundation
import XCTest
import TestSupport

@testable import Cloud
@testable import Edge
@testable import LLM

/// Plays the balancer in front of in-process replicas: every connect goes to the current replica,
/// and the routing keys the edge presented are recorded.
private final class SwitchingConnector: CloudConnector, @unchecked Sendable {
    let replicas: [InProcessConnector]
    private let lock = NSLock()
    private var current = 0
    private var seen: [String] = []

    init(_ replicas: [InProcessConnector]) { self.replicas = replicas }

    func route(to index: Int) { lock.withLock { current = index } }
    var keys: [String] { lock.withLock { seen } }

    func connect() async throws -> CloudLink { try await connect(routingKey: "") }

    func connect(routingKey: String) async throws -> CloudLink {
        let replica = lock.withLock {
            seen.append(routingKey)
            return replicas[current]
        }
        return try await replica.connect()
    }
}

/// Issue 14: `--on-cloud-loss wait` across replicas, in process (the process-level checks behind a
/// real balancer are in Tests/CLITests/ClusterProcessTests.swift).
final class FailoverTests: XCTestCase {
    private func secondReplica(_ p: CollabFixture.Parts) throws -> CloudEngine {
        let model = try LlamaModel(file: p.file, layers: CollabFixture.split..<30, pool: ThreadPool(threadCount: 1))
        return CloudEngine(manager: ContextManager(model: model, fingerprint: p.fingerprint))
    }

    private func options(_ policy: CloudLossPolicy, maxTokens: Int) -> EdgeOptions {
        var options = EdgeOptions(mode: .collab)  // no exits: the cloud decides every token
        options.wire = .f32
        options.maxTokens = maxTokens
        options.onCloudLoss = policy
        options.initialBackoffSeconds = 0.05
        return options
    }

    /// The replica dies after 4 tokens; 0.3 s later the balancer sends the session's key to another
    /// replica, which does not know it (RESYNC): the edge waits, reopens there, replays its log and
    /// gives exactly the tokens of an uninterrupted run, all decided by the cloud.
    func testWaitMovesTheSessionToAnotherReplicaLosslessly() async throws {
        let p = try CollabFixture.load()
        let other = try secondReplica(p)
        defer { other.shutdown() }
        let ids = CollabFixture.chat("Write a long story about a dragon.", p.tokenizer)
        let reference = try await EdgeRunner(model: p.edge, tokenizer: p.tokenizer, fingerprint: p.fingerprint,
                                             options: options(.wait, maxTokens: 12),
                                             connector: InProcessConnector(engine: p.engine, owner: "reference"))
            .generate(prompt: ids)
        XCTAssertEqual(reference.result.sources, Array(repeating: TokenSource.cloud, count: 12))

        let first = InProcessConnector(engine: p.engine, owner: "edge")
        let balancer = SwitchingConnector([first, InProcessConnector(engine: other, owner: "edge")])
        let runner = try EdgeRunner(model: p.edge, tokenizer: p.tokenizer, fingerprint: p.fingerprint,
                                    options: options(.wait, maxTokens: 12), connector: balancer)
        var emitted = 0
        let r = try await runner.generate(prompt: ids) { _ in
            emitted += 1
            if emitted == 4 {
                first.available = false  // the replica dies
                first.breakLinks()
                Task {
                    try? await Task.sleep(nanoseconds: 300_000_000)
                    balancer.route(to: 1)  // health checks take it out: its keys hash elsewhere
                }
            }
        }
        XCTAssertEqual(r.result.tokens, reference.result.tokens)
        XCTAssertEqual(r.result.sources, Array(repeating: TokenSource.cloud, count: r.result.tokens.count))
        XCTAssertEqual(r.failover.resyncs, 1)
        XCTAssertGreaterThanOrEqual(r.failover.reconnects, 1)
        // The whole log so far went to the new replica: prompt and the 4 emitted tokens, 576 f32 each.
        XCTAssertEqual(r.failover.replayBytes, (ids.count + 4) * 576 * 4)
        XCTAssertEqual(r.failover.recoverySeconds.count, 1)
        XCTAssertGreaterThanOrEqual(r.failover.recoverySeconds.first ?? 0, 0.25)
        XCTAssertGreaterThanOrEqual(r.failover.cloudWaitSeconds, 0.25)
        // One routing key for every stream of the session; the next session gets another one.
        XCTAssertGreaterThanOrEqual(balancer.keys.count, 2)
        XCTAssertEqual(Set(balancer.keys).count, 1)
        XCTAssertEqual(balancer.keys[0].count, 32)
        XCTAssertTrue(balancer.keys[0].allSatisfy(\.isHexDigit))
        _ = try await runner.generate(prompt: CollabFixture.chat("Hi", p.tokenizer))
        XCTAssertEqual(Set(balancer.keys).count, 2)
    }

    /// No replica comes back: `wait` holds for --cloud-wait-s once, then degrades for the rest.
    func testWaitDegradesAfterCloudWaitSeconds() async throws {
        let p = try CollabFixture.load()
        let connector = InProcessConnector(engine: p.engine, owner: "gone")
        var options = options(.wait, maxTokens: 8)
        options.cloudWaitSeconds = 0.3
        let runner = try EdgeRunner(model: p.edge, tokenizer: p.tokenizer, fingerprint: p.fingerprint, options: options,
                                    connector: connector)
        var emitted = 0
        let start = Date()
        let r = try await runner.generate(prompt: CollabFixture.chat("Write a long story about a dragon.", p.tokenizer)) { _ in
            emitted += 1
            if emitted == 2 {
                connector.available = false
                connector.breakLinks()
            }
        }
        XCTAssertEqual(r.result.tokens.count, 8)
        XCTAssertEqual(Array(r.result.sources.prefix(2)), [TokenSource.cloud, .cloud])
        XCTAssertEqual(Array(r.result.sources.dropFirst(2)), Array(repeating: TokenSource.degraded(layer: 15), count: 6))
        XCTAssertGreaterThanOrEqual(r.failover.cloudWaitSeconds, 0.3)
        XCTAssertLessThan(r.failover.cloudWaitSeconds, 1.5, "one wait per outage, not one per token")
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
        XCTAssertTrue(r.failover.recoverySeconds.isEmpty)
    }

    /// `degrade` (the default) does not hold: the first token after the loss is already degraded.
    func testDegradeDoesNotWait() async throws {
        let p = try CollabFixture.load()
        let connector = InProcessConnector(engine: p.engine, owner: "degrade")
        let runner = try EdgeRunner(model: p.edge, tokenizer: p.tokenizer, fingerprint: p.fingerprint,
                                    options: options(.degrade, maxTokens: 5), connector: connector)
        var emitted = 0
        let r = try await runner.generate(prompt: CollabFixture.chat("Write a long story about a dragon.", p.tokenizer)) { _ in
            emitted += 1
            if emitted == 2 {
                connector.available = false
                connector.breakLinks()
            }
        }
        XCTAssertEqual(Array(r.result.sources.dropFirst(2)), Array(repeating: TokenSource.degraded(layer: 15), count: 3))
        XCTAssertEqual(r.failover.cloudWaitSeconds, 0)
    }
}
