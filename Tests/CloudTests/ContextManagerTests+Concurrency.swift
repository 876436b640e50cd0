import CollabCore
import Foundation
import XCTest
import TestSupport

@testable import Cloud
@testable import LLM

/// The context manager behind a CloudEngine: concurrent sessions share forward passes.
extension ContextManagerTests {
    /// A row budget that holds eight prompts in one pass (these tests are about batching, not chunking).
    static var unchunked: CloudLimits {
        var limits = CloudLimits()
        limits.maxBatchRows = 1024
        return limits
    }

    /// Each prompt alone on a synchronous manager: the reference every batched answer must equal.
    private static func singleSessionReplies(_ prompts: [Prompt]) throws -> [TokenReply] {
        let alone = try makeManager()
        return try prompts.map { prompt in
            let id = try alone.open(request(), owner: "reference").session
            try alone.append(id, owner: "reference", firstPosition: 0, rows: prompt.count,
                             payload: try payload(prompt, 0..<prompt.count))
            let reply = try infer(alone, InferJob(session: id, owner: "reference", position: prompt.count - 1, topLogprobs: 3))
            try alone.close(id, owner: "reference")
            return reply
        }
    }

    /// Eight prompts' boundary states with their single-session answers, and eight sessions opened on a
    /// batching engine (the caller shuts it down).
    private static func batchingSetup(_ texts: [String]) async throws
        -> (prompts: [Prompt], references: [TokenReply], payloads: [[UInt8]], rows: [Int], engine: CloudEngine, ids: [SessionID]) {
        let prompts = try texts.map { try boundary($0) }
        let references = try singleSessionReplies(prompts)
        let payloads = try prompts.map { try payload($0, 0..<$0.count) }
        let engine = CloudEngine(manager: try makeManager(limits: unchunked, ownModel: true))
        let ids = try await openAll(engine, count: texts.count, request: try request())
        return (prompts, references, payloads, prompts.map(\.count), engine, ids)
    }

    private static func openAll(_ engine: CloudEngine, count: Int, request: OpenRequest) async throws -> [SessionID] {
        try await withThrowingTaskGroup(of: (Int, SessionID).self) { group in
            for k in 0..<count {
                group.addTask { (k, try await engine.open(request, owner: "user\(k)").session) }
            }
            var ids = [SessionID?](repeating: nil, count: count)
            for try await (k, id) in group { ids[k] = id }
            return ids.map { $0! }
        }
    }

    private static func appendAll(_ engine: CloudEngine, _ ids: [SessionID], _ payloads: [[UInt8]], _ rows: [Int]) async throws -> [Int] {
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for k in ids.indices {
                let (id, payload, n) = (ids[k], payloads[k], rows[k])
                group.addTask { (k, try await engine.append(id, owner: "user\(k)", firstPosition: 0, rows: n, payload: payload)) }
            }
            var held = [Int](repeating: -1, count: ids.count)
            for try await (k, h) in group { held[k] = h }
            return held
        }
    }

    private static func inferAll(_ engine: CloudEngine, _ ids: [SessionID], _ rows: [Int],
                                 started: (@Sendable () -> Void)? = nil) async throws -> [TokenReply] {
        try await withThrowingTaskGroup(of: (Int, TokenReply).self) { group in
            for k in ids.indices {
                let (id, n) = (ids[k], rows[k])
                group.addTask {
                    started?()
                    return (k, try await engine.infer(InferJob(session: id, owner: "user\(k)", position: n - 1, topLogprobs: 3)))
                }
            }
            var replies = [TokenReply?](repeating: nil, count: ids.count)
            for try await (k, reply) in group { replies[k] = reply }
            return replies.map { $0! }
        }
    }

    private static func assertMatches(_ replies: [TokenReply], _ references: [TokenReply], _ prompts: [Prompt],
                                      file: StaticString = #filePath, line: UInt = #line) {
        for (k, (reply, reference)) in zip(replies, references).enumerated() {
            XCTAssertEqual(reply.token, reference.token, "prompt \(k): \(prompts[k].text)", file: file, line: line)
            XCTAssertEqual(reply.position, prompts[k].count - 1, file: file, line: line)
            XCTAssertEqual(reply.rowsComputed, prompts[k].count, file: file, line: line)
            XCTAssertGreaterThanOrEqual(reply.batchRows, reply.rowsComputed, file: file, line: line)
            XCTAssertEqual(reply.logprob, reference.logprob, accuracy: 1e-2, "prompt \(k)", file: file, line: line)
            XCTAssertEqual(reply.top.first?.token, reference.top.first?.token, file: file, line: line)
        }
    }

    func testConcurrentSessionsAreBatchedAndEachMatchesItsSingleSessionResult() async throws {
        let (prompts, references, payloads, rows, engine, ids) = try await Self.batchingSetup(Array(CollabFixture.prompts.prefix(8)))
        defer { engine.shutdown() }
        XCTAssertEqual(Set(prompts.map(\.ids)).count, 8)
        XCTAssertEqual(Set(ids).count, 8)
        // All appends first (each task its own session), then all INFERs together.
        let held = try await Self.appendAll(engine, ids, payloads, rows)
        XCTAssertEqual(held, rows)
        let replies = try await Self.inferAll(engine, ids, rows)
        Self.assertMatches(replies, references, prompts)

        let largest = await engine.inspect { $0.largestBatchSessions }
        let batches = await engine.inspect { $0.batches }
        let batchedRows = await engine.inspect { $0.batchedRows }
        print("8 concurrent INFERs: \(batches ?? -1) forward passes, largest \(largest ?? -1) sessions")
        XCTAssertGreaterThan(largest ?? 0, 1, "no two sessions ever shared a forward pass")
        XCTAssertLessThan(batches ?? 99, 8, "every INFER ran its own forward pass")
        XCTAssertEqual(batchedRows, rows.reduce(0, +), "each uploaded row is computed exactly once")
        XCTAssertTrue(replies.contains { $0.batchRows > $0.rowsComputed }, "no reply shows a shared pass")
    }

    /// With the engine thread held busy while the INFERs queue up, all 8 go into one forward pass.
    func testInfersQueuedDuringAPassShareTheNextPass() async throws {
        let (prompts, references, payloads, rows, engine, ids) = try await Self.batchingSetup(Array(CollabFixture.prompts.suffix(8)))
        defer { engine.shutdown() }
        _ = try await Self.appendAll(engine, ids, payloads, rows)

        // Hold the engine thread inside an inspect until every INFER has been submitted.
        let gate = DispatchSemaphore(value: 0)
        let state = GateState()
        let holder = Task { await engine.inspect { _ in state.markHeld(); gate.wait(); return 0 } }
        while !state.held { try await Task.sleep(nanoseconds: 1_000_000) }
        async let replies = Self.inferAll(engine, ids, rows, started: { state.markStarted() })
        while state.started < 8 { try await Task.sleep(nanoseconds: 1_000_000) }
        try await Task.sleep(nanoseconds: 300_000_000)  // let the started tasks reach submit()
        gate.signal()
        _ = await holder.value
        let results = try await replies
        Self.assertMatches(results, references, prompts)

        let total = rows.reduce(0, +)
        let batches = await engine.inspect { $0.batches }
        let largest = await engine.inspect { $0.largestBatchSessions }
        XCTAssertEqual(batches, 1, "8 queued INFERs must be served by one forward pass")
        XCTAssertEqual(largest, 8)
        XCTAssertEqual(results.map(\.batchRows), Array(repeating: total, count: 8))
    }

    /// Engine-level checks of the same hostile cases: errors travel back to the right caller only.
    func testEngineReportsErrorsToTheCallerAndKeepsServing() async throws {
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let payload = try Self.payload(prompt, 0..<n)
        let engine = CloudEngine(manager: try Self.makeManager(ownModel: true))
        defer { engine.shutdown() }
        let id = try await engine.open(try Self.request(), owner: "alice").session

        func expect(_ code: CollabError.Code, _ what: String, _ body: () async throws -> Void,
                    file: StaticString = #filePath, line: UInt = #line) async {
            do {
                try await body()
                XCTFail("\(what): expected \(code.rawValue)", file: file, line: line)
            } catch let error as CollabError {
                XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
            } catch {
                XCTFail("\(what): \(error)", file: file, line: line)
            }
        }
        var wrong = try Self.request()
        wrong.splitLayer = 14
        await expect(.fingerprintMismatch, "wrong split") { _ = try await engine.open(wrong, owner: "alice") }
        await expect(.unknownSession, "foreign append") {
            _ = try await engine.append(id, owner: "mallory", firstPosition: 0, rows: n, payload: payload)
        }
        await expect(.invalidArgument, "short payload") {
            _ = try await engine.append(id, owner: "alice", firstPosition: 0, rows: n, payload: Array(payload.dropLast(2)))
        }
        await expect(.outOfOrder, "INFER before any upload") {
            _ = try await engine.infer(InferJob(session: id, owner: "alice", position: 0))
        }
        let held = try await engine.append(id, owner: "alice", firstPosition: 0, rows: n, payload: payload)
        XCTAssertEqual(held, n)
        await expect(.invalidArgument, "negative temperature") {
            _ = try await engine.infer(InferJob(session: id, owner: "alice", position: n - 1,
                                                sampling: SamplingParameters(temperature: -0.5)))
        }
        await expect(.invalidArgument, "top_logprobs 100") {
            _ = try await engine.infer(InferJob(session: id, owner: "alice", position: n - 1, topLogprobs: 100))
        }
        await expect(.unknownSession, "foreign truncate") { _ = try await engine.truncate(id, owner: "mallory", to: 0) }
        await expect(.unknownSession, "foreign close") { try await engine.close(id, owner: "mallory") }
        let reply = try await engine.infer(InferJob(session: id, owner: "alice", position: n - 1))
        XCTAssertEqual(reply.rowsComputed, n)
        let truncated = try await engine.truncate(id, owner: "alice", to: 2)
        XCTAssertEqual(truncated, 2)
        let rest = try Self.payload(prompt, 2..<n)
        let heldAgain = try await engine.append(id, owner: "alice", firstPosition: 2, rows: n - 2, payload: rest)
        XCTAssertEqual(heldAgain, n)
        let again = try await engine.infer(InferJob(session: id, owner: "alice", position: n - 1))
        XCTAssertEqual(again.token, reply.token)
        XCTAssertEqual(again.rowsComputed, n - 2)

        // After shutdown every call fails with `unavailable`, and inspect answers nil.
        engine.shutdown()
        await expect(.unavailable, "INFER after shutdown") {
            _ = try await engine.infer(InferJob(session: id, owner: "alice", position: n - 1))
        }
        await expect(.unavailable, "OPEN after shutdown") { _ = try await engine.open(try Self.request(), owner: "alice") }
        let inspected = await engine.inspect { $0.sessionCount }
        XCTAssertNil(inspected)
    }
}

/// Progress flags shared between the test and the engine thread.
private final class GateState: @unchecked Sendable {
    private let lock = NSLock()
    private var isHeld = false
    private var startedCount = 0
    var held: Bool { lock.withLock { isHeld } }
    var started: Int { lock.withLock { startedCount } }
    func markHeld() { lock.withLock { isHeld = true } }
    func markStarted() { lock.withLock { startedCount += 1 } }
}
