import CollabCore
import Foundation
import XCTest
import TestSupport

@testable import Cloud
@testable import LLM

/// The cloud context manager (docs/ARCHITECTURE.md section 3) driven directly and synchronously, with real
/// boundary states from the edge half of the default model split at layer 15.
final class ContextManagerTests: XCTestCase {
    static let width = 576

    // MARK: - Shared helpers

    /// One cloud half ([15, 30) + head) shared by the synchronous tests (they run one at a time;
    /// engine tests build their own so a stray engine thread can never race them).
    nonisolated(unsafe) private static var sharedCloudModel: LlamaModel?
    nonisolated(unsafe) private static var boundaryCache: [String: Prompt] = [:]

    struct Prompt {
        let text: String
        let ids: [Int]
        /// Layer-15 outputs, one row per token.
        let states: HiddenStates
        var count: Int { ids.count }
    }

    static func cloudModel() throws -> LlamaModel {
        if let sharedCloudModel { return sharedCloudModel }
        let p = try CollabFixture.load()
        let model = try LlamaModel(file: p.file, layers: CollabFixture.split..<30, pool: ThreadPool(threadCount: 1))
        sharedCloudModel = model
        return model
    }

    static func makeManager(limits: CloudLimits = CloudLimits(), ownModel: Bool = false) throws -> ContextManager {
        let p = try CollabFixture.load()
        let model = ownModel
            ? try LlamaModel(file: p.file, layers: CollabFixture.split..<30, pool: ThreadPool(threadCount: 1))
            : try cloudModel()
        return ContextManager(model: model, fingerprint: p.fingerprint, limits: limits)
    }

    /// The edge's boundary states for a chat prompt (edge layers [0, 15) on a fresh cache).
    static func boundary(_ text: String) throws -> Prompt {
        if let cached = boundaryCache[text] { return cached }
        let p = try CollabFixture.load()
        let ids = CollabFixture.chat(text, p.tokenizer)
        var h = try p.edge.embed(ids)
        try p.edge.forward(&h, cache: p.edge.makeCache(capacity: 256))
        let prompt = Prompt(text: text, ids: ids, states: h)
        boundaryCache[text] = prompt
        return prompt
    }

    static func payload(_ prompt: Prompt, _ range: Range<Int>, _ format: WireFormat = .f16) throws -> [UInt8] {
        try HiddenStateCodec(format: format, width: width).encode(prompt.states.rows(range))
    }

    static func request(maxPositions: Int = 64, wire: WireFormat = .f16, resume: SessionID? = nil) throws -> OpenRequest {
        let p = try CollabFixture.load()
        return OpenRequest(fingerprint: p.fingerprint, splitLayer: CollabFixture.split, wire: wire,
                           maxPositions: maxPositions, resume: resume)
    }

    /// The full model's logits for the row after `ids[..<upTo]` (greedy reference).
    static func fullLogits(_ ids: [Int], row: Int) throws -> [Float] {
        let p = try CollabFixture.load()
        var h = try p.full.embed(ids)
        try p.full.forward(&h, cache: p.full.makeCache(capacity: 256))
        return try p.full.logits(h, rows: [row])
    }

    /// One INFER through the batch path; a deferred (nil) result is a test failure.
    static func infer(_ manager: ContextManager, _ job: InferJob, now: Date = Date()) throws -> TokenReply {
        let results = manager.inferBatch([job], now: now)
        guard results.count == 1, let result = results[0] else {
            throw CollabError(.internal, "test: a lone INFER was deferred")
        }
        return try result.get()
    }

    /// Asserts that `body` throws a CollabError with exactly `code`; returns the error.
    @discardableResult
    static func expect<T>(_ code: CollabError.Code, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                          _ body: () throws -> T) -> CollabError? {
        do {
            let value = try body()
            XCTFail("\(what): expected \(code.rawValue), got success \(value)", file: file, line: line)
        } catch let error as CollabError {
            XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("\(what): expected CollabError \(code.rawValue), got \(type(of: error)) \(error)", file: file, line: line)
        }
        return nil
    }

    /// A manager with one healthy session (owner "healthy") that every hostile test re-verifies after
    /// each bad call: truncate to 0, replay the whole prompt, INFER the last position, same token.
    final class Harness {
        let manager: ContextManager
        let healthy: SessionID
        let healthyPrompt: Prompt
        let healthyPayload: [UInt8]
        var reference: Int?
        var checks = 0

        init(limits: CloudLimits? = nil) throws {
            healthyPrompt = try ContextManagerTests.boundary("Name three primary colors.")
            var l = limits ?? CloudLimits()
            if limits == nil { l.maxRowsPerAppend = 48 }
            manager = try ContextManagerTests.makeManager(limits: l)
            healthy = try manager.open(ContextManagerTests.request(), owner: "healthy").session
            healthyPayload = try ContextManagerTests.payload(healthyPrompt, 0..<healthyPrompt.count)
            try check()
        }

        func check(file: StaticString = #filePath, line: UInt = #line) throws {
            let n = healthyPrompt.count
            XCTAssertEqual(try manager.truncate(healthy, owner: "healthy", to: 0), 0, file: file, line: line)
            XCTAssertEqual(try manager.append(healthy, owner: "healthy", firstPosition: 0, rows: n, payload: healthyPayload),
                           n, file: file, line: line)
            let reply = try ContextManagerTests.infer(manager, InferJob(session: healthy, owner: "healthy", position: n - 1))
            XCTAssertEqual(reply.rowsComputed, n, file: file, line: line)
            XCTAssertEqual(reply.position, n - 1, file: file, line: line)
            if let reference {
                XCTAssertEqual(reply.token, reference, "the healthy session's answer changed", file: file, line: line)
            } else {
                reference = reply.token
            }
            checks += 1
        }
    }

    // MARK: - 1. Hostile and malformed input

    func testOpenRejectsBadRequestsWithExactCodes() throws {
        let h = try Harness()
        let m = h.manager
        let sessionsBefore = m.sessionCount

        var wrongPrint = try Self.request()
        wrongPrint.fingerprint[0] ^= 0xFF
        Self.expect(.fingerprintMismatch, "fingerprint with one flipped byte") { try m.open(wrongPrint, owner: "alice") }
        try h.check()

        var emptyPrint = try Self.request()
        emptyPrint.fingerprint = []
        Self.expect(.fingerprintMismatch, "empty fingerprint") { try m.open(emptyPrint, owner: "alice") }
        try h.check()

        for split in [14, 16, 0, -1, 30] {
            var wrongSplit = try Self.request()
            wrongSplit.splitLayer = split
            Self.expect(.fingerprintMismatch, "split at \(split)") { try m.open(wrongSplit, owner: "alice") }
            try h.check()
        }

        for version in [0, ProtocolVersion.current + 1, -1] {
            var wrongVersion = try Self.request()
            wrongVersion.protocolVersion = version
            Self.expect(.invalidArgument, "protocol version \(version)") { try m.open(wrongVersion, owner: "alice") }
            try h.check()
        }

        for positions in [0, -1, Int.min] {
            Self.expect(.invalidArgument, "max_positions \(positions)") {
                try m.open(try Self.request(maxPositions: positions), owner: "alice")
            }
            try h.check()
        }
        // A bad OPEN admitted nothing and reserved nothing.
        XCTAssertEqual(m.sessionCount, sessionsBefore)
        XCTAssertEqual(m.reservedBytes, 64 * m.bytesPerPosition)
        XCTAssertEqual(m.evictions, 0)

        // A declared length above the server's limit is clamped, not refused.
        let clamped = try m.open(try Self.request(maxPositions: Int.max), owner: "alice")
        XCTAssertEqual(clamped.maxPositions, min(m.limits.maxPositionsPerSession, m.model.config.contextLength))
        XCTAssertEqual(clamped.maxRowsPerAppend, 48)
        XCTAssertEqual(clamped.positionsHeld, 0)
        try h.check()
    }

    func testMalformedPayloadsAreRefusedAndNothingIsStored() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let alice = try m.open(try Self.request(), owner: "alice").session
        try m.append(alice, owner: "alice", firstPosition: 0, rows: 2, payload: try Self.payload(prompt, 0..<2))
        let rowBytes = Self.width * 2

        // Rows and bytes disagree, every way round.
        let oneRow = try Self.payload(prompt, 2..<3)
        let twoRows = try Self.payload(prompt, 2..<4)
        let bad: [(String, Int, [UInt8])] = [
            ("2 rows declared, 1 row sent", 2, oneRow),
            ("1 row declared, 2 rows sent", 1, twoRows),
            ("1 row plus one byte", 1, oneRow + [0]),
            ("1 row minus one byte", 1, Array(oneRow.dropLast())),
            ("1 row declared, empty payload", 1, []),
            ("0 rows declared, 1 row sent", 0, oneRow),
            ("a f32-sized row on an f16 session", 1, try Self.payload(prompt, 2..<3, .f32)),
        ]
        for (what, rows, bytes) in bad {
            Self.expect(.invalidArgument, what) {
                try m.append(alice, owner: "alice", firstPosition: 2, rows: rows, payload: bytes)
            }
            XCTAssertEqual(m.usage(alice)?.pending, 2, "\(what) stored something")
            try h.check()
        }

        // Non-finite f16 values (inf = 0x7C00, NaN = 0x7E00, -inf = 0xFC00), little-endian.
        for (what, bits) in [("+inf", UInt16(0x7C00)), ("NaN", UInt16(0x7E00)), ("-inf", UInt16(0xFC00))] {
            var poisoned = twoRows
            let at = rowBytes + 2 * 100  // row 1, column 100
            poisoned[at] = UInt8(bits & 0xFF)
            poisoned[at + 1] = UInt8(bits >> 8)
            let error = Self.expect(.invalidArgument, "f16 \(what)") {
                try m.append(alice, owner: "alice", firstPosition: 2, rows: 2, payload: poisoned)
            }
            XCTAssertTrue(error?.message.contains("row 1") ?? false, "\(error?.message ?? "")")
            XCTAssertEqual(m.usage(alice)?.pending, 2)
            try h.check()
        }

        // The session is intact: the right payload is accepted afterwards.
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: 2, rows: 2, payload: twoRows), 4)
        XCTAssertEqual(m.usage(alice)?.bytesReceived, 4 * rowBytes, "refused payloads must not be counted")
        try h.check()
    }

    func testNaNInF32PayloadIsRefused() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let alice = try m.open(try Self.request(wire: .f32), owner: "alice").session
        let good = try Self.payload(prompt, 0..<3, .f32)
        XCTAssertEqual(good.count, 3 * Self.width * 4)
        for value in [Float.nan, -Float.nan, Float.infinity, -Float.infinity, Float.signalingNaN] {
            var values = prompt.states.rows(0..<3).values
            values[2 * Self.width + 575] = value  // the very last value
            let bytes = values.withUnsafeBytes { Array($0) }
            XCTAssertEqual(bytes.count, good.count)
            let error = Self.expect(.invalidArgument, "f32 \(value)") {
                try m.append(alice, owner: "alice", firstPosition: 0, rows: 3, payload: bytes)
            }
            XCTAssertTrue(error?.message.contains("non-finite") ?? false, "\(error?.message ?? "")")
            XCTAssertEqual(m.usage(alice)?.pending, 0)
            try h.check()
        }
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: 0, rows: 3, payload: good), 3)
        try h.check()
    }

    func testRowCountsBeyondTheLimitAreRefused() throws {
        let h = try Harness()
        let m = h.manager
        XCTAssertEqual(m.limits.maxRowsPerAppend, 48)
        let prompt = try Self.boundary("Explain photosynthesis in one sentence.")
        let alice = try m.open(try Self.request(maxPositions: 128), owner: "alice").session
        // 49 real rows (the prompt repeated): a well-formed payload, one row over the limit.
        var rows49 = prompt.states
        while rows49.rows < 49 { rows49.append(prompt.states) }
        rows49 = rows49.rows(0..<49)
        let payload49 = try HiddenStateCodec(format: .f16, width: Self.width, maxRows: 64).encode(rows49)
        Self.expect(.invalidArgument, "49 rows > 48") {
            try m.append(alice, owner: "alice", firstPosition: 0, rows: 49, payload: payload49)
        }
        try h.check()
        for rows in [Int.max, 1 << 40, -1, Int.min] {
            Self.expect(.invalidArgument, "rows \(rows), empty payload") {
                try m.append(alice, owner: "alice", firstPosition: 0, rows: rows, payload: [])
            }
            try h.check()
        }
        XCTAssertEqual(m.usage(alice)?.pending, 0)
        // Exactly at the limit is fine.
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: 0, rows: 48,
                                    payload: try HiddenStateCodec(format: .f16, width: Self.width).encode(rows49.rows(0..<48))), 48)
        try h.check()
    }

    func testAppendBeyondTheDeclaredLengthIsResourceExhausted() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let alice = try m.open(try Self.request(maxPositions: n - 1), owner: "alice").session
        Self.expect(.resourceExhausted, "n rows into n-1 positions") {
            try m.append(alice, owner: "alice", firstPosition: 0, rows: n, payload: try Self.payload(prompt, 0..<n))
        }
        try h.check()
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: 0, rows: n - 1,
                                    payload: try Self.payload(prompt, 0..<(n - 1))), n - 1)
        Self.expect(.resourceExhausted, "one row past the end") {
            try m.append(alice, owner: "alice", firstPosition: n - 1, rows: 1, payload: try Self.payload(prompt, (n - 1)..<n))
        }
        try h.check()
        // Everything held can still be computed (the KV cache has room for all of it).
        XCTAssertEqual(try Self.infer(m, InferJob(session: alice, owner: "alice", position: n - 2)).rowsComputed, n - 1)
        try h.check()
    }

    func testUnknownAndForeignSessionsLookTheSame() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let payload = try Self.payload(prompt, 0..<n)
        let alice = try m.open(try Self.request(), owner: "alice").session
        try m.append(alice, owner: "alice", firstPosition: 0, rows: n - 1, payload: try Self.payload(prompt, 0..<(n - 1)))
        let unknown = SessionID.random()

        /// Every session-addressed call, as `owner` on `id`.
        func calls(_ id: SessionID, _ owner: String) -> [(String, () throws -> Any)] {
            [
                ("append", { try m.append(id, owner: owner, firstPosition: n - 1, rows: 1, payload: Array(payload.suffix(Self.width * 2))) }),
                ("replay", { try m.append(id, owner: owner, firstPosition: 0, rows: 1, payload: Array(payload.prefix(Self.width * 2))) }),
                ("infer", { try Self.infer(m, InferJob(session: id, owner: owner, position: 0)) }),
                ("truncate", { try m.truncate(id, owner: owner, to: 0) }),
                ("close", { try m.close(id, owner: owner) }),
                ("resume", { try m.open(try Self.request(resume: id), owner: owner) }),
            ]
        }
        let normalize = { (error: CollabError?, id: SessionID) in
            error.map { "\($0.code.rawValue)|" + $0.message.replacingOccurrences(of: id.description, with: "<id>") }
        }
        let unknownCalls = calls(unknown, "alice")
        for (k, (what, foreign)) in calls(alice, "mallory").enumerated() {
            let a = Self.expect(.unknownSession, "mallory \(what) on alice's session") { try foreign() }
            try h.check()
            let b = Self.expect(.unknownSession, "\(what) on an unknown id") { try unknownCalls[k].1() }
            try h.check()
            XCTAssertEqual(normalize(a, alice), normalize(b, unknown), "\(what): a foreign session must look exactly like an unknown one")
            XCTAssertFalse(a?.message.contains("alice") ?? true, "the error names the real owner")
        }
        // Owner names are compared exactly.
        Self.expect(.unknownSession, "owner differing in case") { try m.truncate(alice, owner: "Alice", to: 0) }
        Self.expect(.unknownSession, "empty owner") { try m.truncate(alice, owner: "", to: 0) }
        // Nothing mallory did touched alice's session: it still holds n-1 rows and answers.
        XCTAssertEqual(m.usage(alice)?.pending, n - 1)
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: n - 1, rows: 1,
                                    payload: Array(payload.suffix(Self.width * 2))), n)
        let reply = try Self.infer(m, InferJob(session: alice, owner: "alice", position: n - 1))
        XCTAssertEqual(reply.rowsComputed, n)
        try h.check()
        // A closed session is unknown afterwards, for its owner too.
        try m.close(alice, owner: "alice")
        Self.expect(.unknownSession, "append after close") {
            try m.append(alice, owner: "alice", firstPosition: n, rows: 0, payload: [])
        }
        Self.expect(.unknownSession, "close twice") { try m.close(alice, owner: "alice") }
        try h.check()
    }

    func testOutOfOrderAppendsAreRefused() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let alice = try m.open(try Self.request(), owner: "alice").session
        try m.append(alice, owner: "alice", firstPosition: 0, rows: 4, payload: try Self.payload(prompt, 0..<4))

        let cases: [(String, Int, Range<Int>)] = [
            ("a gap of one position", 5, 5..<7),
            ("a gap from an empty session's view", 10, 10..<11),
            ("partially overlapping the held end", 3, 3..<6),
            ("negative first position", -1, 0..<2),
            ("negative first position ending inside", -2, 0..<4),
        ]
        for (what, first, rows) in cases {
            Self.expect(.outOfOrder, what) {
                try m.append(alice, owner: "alice", firstPosition: first, rows: rows.count, payload: try Self.payload(prompt, rows))
            }
            XCTAssertEqual(m.usage(alice)?.pending, 4, what)
            try h.check()
        }
        // Positions near Int.max must not overflow (`firstPosition + rows`): the cloud must answer, not trap.
        for first in [Int.max, Int.max - 1, Int.max - 47] {
            Self.expect(.outOfOrder, "first position \(first)") {
                try m.append(alice, owner: "alice", firstPosition: first, rows: 2, payload: try Self.payload(prompt, 4..<6))
            }
            try h.check()
        }
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: 4, rows: n - 4, payload: try Self.payload(prompt, 4..<n)), n)
        try h.check()
    }

    func testInferOutsideThePendingRangeIsOutOfOrder() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let alice = try m.open(try Self.request(), owner: "alice").session
        let job = { (position: Int) in InferJob(session: alice, owner: "alice", position: position) }

        Self.expect(.outOfOrder, "INFER on an empty session") { try Self.infer(m, job(0)) }
        try h.check()
        try m.append(alice, owner: "alice", firstPosition: 0, rows: n - 2, payload: try Self.payload(prompt, 0..<(n - 2)))
        for position in [n - 2, n - 1, n + 100, Int.max, -1, Int.min] {
            Self.expect(.outOfOrder, "INFER(\(position)) with \(n - 2) uploaded") { try Self.infer(m, job(position)) }
            XCTAssertEqual(m.usage(alice)?.pending, n - 2, "a refused INFER consumed pending rows")
            XCTAssertEqual(m.usage(alice)?.computed, 0)
            try h.check()
        }
        // Compute the first half, then INFER positions already computed.
        let half = (n - 2) / 2
        XCTAssertEqual(try Self.infer(m, job(half)).rowsComputed, half + 1)
        for position in [half, 0, half - 1] {
            Self.expect(.outOfOrder, "INFER(\(position)) with \(half + 1) computed") { try Self.infer(m, job(position)) }
            XCTAssertEqual(m.usage(alice)?.computed, half + 1)
            XCTAssertEqual(m.usage(alice)?.pending, n - 2 - half - 1)
            try h.check()
        }
        XCTAssertEqual(try Self.infer(m, job(n - 3)).rowsComputed, n - 3 - half)
        try h.check()
    }

    func testInvalidSamplingAndTopLogprobsAreRefusedWithoutConsumingRows() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let alice = try m.open(try Self.request(), owner: "alice").session
        try m.append(alice, owner: "alice", firstPosition: 0, rows: n, payload: try Self.payload(prompt, 0..<n))
        var bad: [(String, InferJob)] = []
        for (what, sampling) in [
            ("temperature -1", SamplingParameters(temperature: -1)),
            ("temperature NaN", SamplingParameters(temperature: .nan)),
            ("temperature inf", SamplingParameters(temperature: .infinity)),
            ("top_p 0", SamplingParameters(temperature: 0.7, topP: 0)),
            ("top_k -1", SamplingParameters(topK: -1)),
            ("repetition_penalty 0", SamplingParameters(repetitionPenalty: 0)),
        ] {
            bad.append((what, InferJob(session: alice, owner: "alice", position: n - 1, sampling: sampling)))
        }
        for k in [100, 21, -1, Int.min] {
            bad.append(("top_logprobs \(k)", InferJob(session: alice, owner: "alice", position: n - 1, topLogprobs: k)))
        }
        for (what, job) in bad {
            Self.expect(.invalidArgument, what) { try Self.infer(m, job) }
            XCTAssertEqual(m.usage(alice)?.pending, n, "\(what) consumed rows")
            XCTAssertEqual(m.usage(alice)?.computed, 0)
            try h.check()
        }
        // 20 is the documented maximum.
        let reply = try Self.infer(m, InferJob(session: alice, owner: "alice", position: n - 1, topLogprobs: 20))
        XCTAssertEqual(reply.rowsComputed, n)
        XCTAssertEqual(reply.top.count, 20)
        XCTAssertEqual(reply.top.first?.token, reply.token, "greedy picks the most likely token")
        XCTAssertEqual(reply.top.first?.logprob ?? 0, reply.logprob, accuracy: 1e-5)
        XCTAssertEqual(reply.top.map(\.logprob), reply.top.map(\.logprob).sorted(by: >))
        XCTAssertLessThanOrEqual(reply.logprob, 0)
        try h.check()
    }

    /// A job that cannot be served fails alone; the other jobs of the same batch still run.
    func testOneBadJobDoesNotSpoilItsBatch() throws {
        let h = try Harness()
        let m = h.manager
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let alice = try m.open(try Self.request(), owner: "alice").session
        try m.append(alice, owner: "alice", firstPosition: 0, rows: n, payload: try Self.payload(prompt, 0..<n))
        let healthyN = h.healthyPrompt.count
        XCTAssertEqual(try m.truncate(h.healthy, owner: "healthy", to: 0), 0)
        try m.append(h.healthy, owner: "healthy", firstPosition: 0, rows: healthyN, payload: h.healthyPayload)
        let batchesBefore = m.batches
        let results = m.inferBatch([
            InferJob(session: alice, owner: "alice", position: n - 1, topLogprobs: 100),
            InferJob(session: SessionID.random(), owner: "alice", position: 0),
            InferJob(session: alice, owner: "mallory", position: n - 1),
            InferJob(session: h.healthy, owner: "healthy", position: healthyN - 1),
            InferJob(session: alice, owner: "alice", position: n + 3),
        ])
        XCTAssertEqual(results.count, 5)
        XCTAssertEqual(results.map { (try? $0?.get()) == nil }, [true, true, true, false, true])
        func code(_ r: Result<TokenReply, CollabError>?) -> CollabError.Code? {
            if case .failure(let e)? = r { return e.code } else { return nil }
        }
        XCTAssertEqual(results.map(code), [.invalidArgument, .unknownSession, .unknownSession, nil, .outOfOrder])
        let good = try XCTUnwrap(results[3]).get()
        XCTAssertEqual(good.token, h.reference)
        XCTAssertEqual(good.rowsComputed, healthyN)
        XCTAssertEqual(good.batchRows, healthyN, "refused jobs must not add rows to the pass")
        XCTAssertEqual(m.batches, batchesBefore + 1)
        XCTAssertEqual(m.usage(alice)?.pending, n)
        // A batch of nothing but bad jobs runs no pass.
        _ = m.inferBatch([InferJob(session: alice, owner: "alice", position: n)])
        XCTAssertEqual(m.batches, batchesBefore + 1)
        try h.check()
    }

    // MARK: - 2. Replay semantics

    func testReplayedRangesAreIdempotentAndTruncateThenReplayGivesTheSameToken() throws {
        let m = try Self.makeManager()
        let prompt = try Self.boundary("Who wrote Romeo and Juliet?")
        let n = prompt.count
        let id = try m.open(try Self.request(), owner: "alice").session
        let rowBytes = Self.width * 2
        XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: 0, rows: 6, payload: try Self.payload(prompt, 0..<6)), 6)
        // Replays of held ranges: whole, prefix, middle, end, empty.
        for range in [0..<6, 0..<1, 2..<5, 5..<6, 3..<3, 6..<6] {
            XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: range.lowerBound, rows: range.count,
                                        payload: try Self.payload(prompt, range)), 6, "replay of \(range)")
        }
        XCTAssertEqual(m.usage(id)?.pending, 6)
        XCTAssertEqual(m.usage(id)?.bytesReceived, 6 * rowBytes, "a replay is not stored twice")
        XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: 6, rows: n - 6, payload: try Self.payload(prompt, 6..<n)), n)
        let first = try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1, topLogprobs: 5))
        XCTAssertEqual(first.rowsComputed, n)

        // Replays of computed positions are accepted too and change nothing.
        XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: 0, rows: n, payload: try Self.payload(prompt, 0..<n)), n)
        XCTAssertEqual(m.usage(id)?.computed, n)
        XCTAssertEqual(m.usage(id)?.pending, 0)

        // Truncate into the computed part, replay the rest: the same token (bit-identical computation).
        XCTAssertEqual(try m.truncate(id, owner: "alice", to: 5), 5)
        XCTAssertEqual(m.usage(id)?.computed, 5)
        XCTAssertEqual(m.usage(id)?.pending, 0)
        Self.expect(.outOfOrder, "INFER of a truncated position") {
            try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1))
        }
        Self.expect(.outOfOrder, "append past the truncation point") {
            try m.append(id, owner: "alice", firstPosition: 6, rows: 1, payload: try Self.payload(prompt, 6..<7))
        }
        XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: 5, rows: n - 5, payload: try Self.payload(prompt, 5..<n)), n)
        let second = try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1, topLogprobs: 5))
        XCTAssertEqual(second.rowsComputed, n - 5)
        XCTAssertEqual(second.token, first.token)
        XCTAssertEqual(second.logprob, first.logprob, accuracy: 1e-3)
        XCTAssertEqual(second.top.map(\.token), first.top.map(\.token))

        // Truncate inside the pending part keeps the computed part.
        try m.append(id, owner: "alice", firstPosition: n, rows: 3, payload: try Self.payload(prompt, 0..<3))
        XCTAssertEqual(try m.truncate(id, owner: "alice", to: n + 1), n + 1)
        XCTAssertEqual(m.usage(id)?.computed, n)
        XCTAssertEqual(m.usage(id)?.pending, 1)
        // Truncate beyond what is held changes nothing; negative is invalid.
        XCTAssertEqual(try m.truncate(id, owner: "alice", to: n + 50), n + 1)
        XCTAssertEqual(try m.truncate(id, owner: "alice", to: Int.max), n + 1)
        Self.expect(.invalidArgument, "truncate to -1") { try m.truncate(id, owner: "alice", to: -1) }
        XCTAssertEqual(m.usage(id)?.pending, 1)

        // Truncate to 0 and replay everything: still the same answer.
        XCTAssertEqual(try m.truncate(id, owner: "alice", to: 0), 0)
        XCTAssertEqual(m.usage(id)?.computed, 0)
        XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: 0, rows: n, payload: try Self.payload(prompt, 0..<n)), n)
        let third = try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1))
        XCTAssertEqual(third.token, first.token)
        XCTAssertEqual(third.rowsComputed, n)
    }

    // MARK: - 3. Catch-up

    func testOneInferCatchesUpAllPendingChunksAndMatchesTheFullModel() throws {
        let m = try Self.makeManager()
        for text in ["What is 12 times 12?", "Translate 'good morning' into Spanish."] {
            let prompt = try Self.boundary(text)
            let n = prompt.count
            let id = try m.open(try Self.request(wire: .f32), owner: "alice").session
            let cuts = [0, n / 3, 2 * n / 3, n]
            for k in 0..<3 {
                let range = cuts[k]..<cuts[k + 1]
                XCTAssertEqual(try m.append(id, owner: "alice", firstPosition: range.lowerBound, rows: range.count,
                                            payload: try Self.payload(prompt, range, .f32)), range.upperBound)
            }
            XCTAssertEqual(m.usage(id)?.pending, n)
            XCTAssertEqual(m.usage(id)?.computed, 0)
            let batchesBefore = m.batches
            let reply = try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1))
            XCTAssertEqual(m.batches, batchesBefore + 1, "catch-up must be one forward pass")
            XCTAssertEqual(reply.rowsComputed, n)
            XCTAssertEqual(reply.batchRows, n)
            XCTAssertEqual(reply.position, n - 1)
            XCTAssertEqual(m.usage(id)?.computed, n)
            XCTAssertEqual(m.usage(id)?.pending, 0)
            XCTAssertEqual(m.usage(id)?.rowsComputed, n)

            let full = try Self.fullLogits(prompt.ids, row: n - 1)
            XCTAssertEqual(reply.token, Sampler.argmax(full), text)
            XCTAssertEqual(reply.logprob, logProbability(of: reply.token, in: full), accuracy: 1e-3, text)
            try m.close(id, owner: "alice")
        }
    }

    func testInferInTheMiddleComputesOnlyUpToItsPosition() throws {
        let m = try Self.makeManager()
        let prompt = try Self.boundary("Give me a synonym for happy.")
        let n = prompt.count
        let id = try m.open(try Self.request(wire: .f32), owner: "alice").session
        for range in [0..<5, 5..<11, 11..<n] {
            try m.append(id, owner: "alice", firstPosition: range.lowerBound, rows: range.count,
                         payload: try Self.payload(prompt, range, .f32))
        }
        let mid = 8
        let a = try Self.infer(m, InferJob(session: id, owner: "alice", position: mid))
        XCTAssertEqual(a.rowsComputed, mid + 1)
        XCTAssertEqual(m.usage(id)?.computed, mid + 1)
        XCTAssertEqual(m.usage(id)?.pending, n - mid - 1)
        XCTAssertEqual(a.token, Sampler.argmax(try Self.fullLogits(Array(prompt.ids[...mid]), row: mid)))
        let b = try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1))
        XCTAssertEqual(b.rowsComputed, n - mid - 1)
        XCTAssertEqual(b.token, Sampler.argmax(try Self.fullLogits(prompt.ids, row: n - 1)))
        XCTAssertEqual(m.usage(id)?.rowsComputed, n)
    }

    // MARK: - 4. Admission, eviction, idle expiry

    /// Admission evicts only the newcomer's own least recently used sessions: another principal's
    /// live session is never evicted, so when others fill the budget the newcomer is refused.
    func testAdmissionEvictsOnlyTheNewcomersOwnSessions() throws {
        let bpp = try Self.makeManager().bytesPerPosition
        var limits = CloudLimits()
        limits.memoryBudgetBytes = 2 * 64 * bpp + bpp / 2  // two sessions of 64 positions, not three
        let m = try Self.makeManager(limits: limits)
        let prompt = try Self.boundary("What is the capital of France?")
        let t0 = Date()
        let a = try m.open(try Self.request(maxPositions: 64), owner: "alice", now: t0).session
        let b = try m.open(try Self.request(maxPositions: 64), owner: "bob", now: t0.addingTimeInterval(1)).session
        XCTAssertEqual(m.reservedBytes, 2 * 64 * bpp)
        try m.append(a, owner: "alice", firstPosition: 0, rows: 3, payload: try Self.payload(prompt, 0..<3),
                     now: t0.addingTimeInterval(2))
        // carol has nothing of her own to give up: refused, and nobody is evicted.
        Self.expect(.resourceExhausted, "a third principal over a full budget") {
            try m.open(try Self.request(maxPositions: 64), owner: "carol", now: t0.addingTimeInterval(3))
        }
        XCTAssertEqual(m.evictions, 0)
        XCTAssertEqual(m.sessionCount, 2)
        // bob's new session takes the room of bob's own older one.
        let b2 = try m.open(try Self.request(maxPositions: 64), owner: "bob", now: t0.addingTimeInterval(4)).session
        XCTAssertEqual(m.evictions, 1)
        XCTAssertNil(m.usage(b))
        XCTAssertNotNil(m.usage(b2))
        // Its resume is answered RESYNC (the proto's answer for an evicted session); to anyone else
        // the id is simply unknown.
        Self.expect(.resync, "resume of the evicted session") {
            try m.open(try Self.request(resume: b), owner: "bob", now: t0.addingTimeInterval(5))
        }
        Self.expect(.unknownSession, "another principal resuming it") {
            try m.open(try Self.request(resume: b), owner: "alice", now: t0.addingTimeInterval(5))
        }
        Self.expect(.unknownSession, "INFER on the evicted session") {
            try Self.infer(m, InferJob(session: b, owner: "bob", position: 0))
        }
        // alice's session was never touched and still works.
        XCTAssertEqual(m.usage(a)?.pending, 3)
        XCTAssertEqual(try Self.infer(m, InferJob(session: a, owner: "alice", position: 2), now: t0.addingTimeInterval(6)).rowsComputed, 3)
        // A session that needs two slots cannot be made room for by alice's own one: refused before
        // evicting anything, so alice keeps her session.
        Self.expect(.resourceExhausted, "alice's 128 positions beside bob's live session") {
            try m.open(try Self.request(maxPositions: 128), owner: "alice", now: t0.addingTimeInterval(7))
        }
        XCTAssertNotNil(m.usage(a))
        XCTAssertEqual(m.evictions, 1)
        // Closing returns the reservation.
        try m.close(b2, owner: "bob")
        try m.close(a, owner: "alice")
        XCTAssertEqual(m.reservedBytes, 0)
        XCTAssertEqual(m.sessionCount, 0)
    }

    func testPrincipalQuotasBoundSessionsAndMemory() throws {
        let bpp = try Self.makeManager().bytesPerPosition
        var limits = CloudLimits()
        limits.principalQuota = PrincipalQuota(maxSessions: 2)
        limits.principalQuotas = ["small": PrincipalQuota(maxSessions: 8, maxBytes: 100 * bpp)]
        let m = try Self.makeManager(limits: limits)
        let t0 = Date()
        let first = try m.open(try Self.request(maxPositions: 32), owner: "alice", now: t0).session
        let second = try m.open(try Self.request(maxPositions: 32), owner: "alice", now: t0.addingTimeInterval(1)).session
        let bob = try m.open(try Self.request(maxPositions: 32), owner: "bob", now: t0.addingTimeInterval(1)).session
        // A third session of alice's replaces her oldest one; bob's is not hers to take.
        _ = try m.open(try Self.request(maxPositions: 32), owner: "alice", now: t0.addingTimeInterval(2))
        XCTAssertNil(m.usage(first))
        XCTAssertNotNil(m.usage(second))
        XCTAssertNotNil(m.usage(bob))
        // "small" may hold 100 positions' worth: 64 + 32 fit, then the oldest goes; 128 never fits.
        let s1 = try m.open(try Self.request(maxPositions: 64), owner: "small", now: t0.addingTimeInterval(3)).session
        _ = try m.open(try Self.request(maxPositions: 32), owner: "small", now: t0.addingTimeInterval(4))
        XCTAssertNotNil(m.usage(s1))
        _ = try m.open(try Self.request(maxPositions: 32), owner: "small", now: t0.addingTimeInterval(5))
        XCTAssertNil(m.usage(s1))
        let error = Self.expect(.resourceExhausted, "a session over the principal's memory quota") {
            try m.open(try Self.request(maxPositions: 128), owner: "small", now: t0.addingTimeInterval(6))
        }
        XCTAssertTrue(error?.message.contains("quota") ?? false, "\(error?.message ?? "")")
    }

    /// Finite but absurd states (an f32 APPEND of 3e38 gave a uniform distribution and token 0) and
    /// token ids outside the vocabulary are refused with invalid_argument and a message.
    func testOutOfRangeStatesAndTokenIdsAreRefused() throws {
        let m = try Self.makeManager()
        let prompt = try Self.boundary("What is the capital of France?")
        let alice = try m.open(try Self.request(wire: .f32), owner: "alice").session
        for value: Float in [3e38, -2e6, 1.0001e6] {
            var values = prompt.states.rows(0..<3).values
            values[Self.width + 7] = value
            let bytes = values.withUnsafeBytes { Array($0) }
            let error = Self.expect(.invalidArgument, "f32 \(value)") {
                try m.append(alice, owner: "alice", firstPosition: 0, rows: 3, payload: bytes)
            }
            XCTAssertTrue(error?.message.contains("beyond") ?? false, "\(error?.message ?? "")")
            XCTAssertEqual(m.usage(alice)?.pending, 0)
        }
        XCTAssertEqual(try m.append(alice, owner: "alice", firstPosition: 0, rows: 3,
                                    payload: try Self.payload(prompt, 0..<3, .f32)), 3)
        let vocabulary = m.model.config.vocabularySize
        for history in [[1, vocabulary], [-1], [Int(Int32.max)]] {
            let error = Self.expect(.invalidArgument, "history \(history)") {
                try Self.infer(m, InferJob(session: alice, owner: "alice", position: 2, history: history))
            }
            XCTAssertTrue(error?.message.contains("vocabulary") ?? false, "\(error?.message ?? "")")
        }
        XCTAssertEqual(try Self.infer(m, InferJob(session: alice, owner: "alice", position: 2, history: [1, 2])).rowsComputed, 3)
    }

    func testASessionLargerThanTheWholeBudgetIsResourceExhausted() throws {
        let bpp = try Self.makeManager().bytesPerPosition
        var limits = CloudLimits()
        limits.memoryBudgetBytes = 2 * 64 * bpp + bpp / 2
        let m = try Self.makeManager(limits: limits)
        let t0 = Date()
        let a = try m.open(try Self.request(maxPositions: 64), owner: "alice", now: t0).session
        let b = try m.open(try Self.request(maxPositions: 64), owner: "bob", now: t0).session
        for positions in [129, 200, 4096] {
            Self.expect(.resourceExhausted, "\(positions) positions over a budget of 128.5") {
                try m.open(try Self.request(maxPositions: positions), owner: "carol", now: t0.addingTimeInterval(1))
            }
        }
        // Refusing it evicted nobody.
        XCTAssertEqual(m.evictions, 0)
        XCTAssertEqual(m.sessionCount, 2)
        XCTAssertNotNil(m.usage(a))
        XCTAssertNotNil(m.usage(b))
        XCTAssertEqual(m.reservedBytes, 128 * bpp)
    }

    func testIdleSessionsExpire() throws {
        var limits = CloudLimits()
        limits.idleTimeoutSeconds = 60
        let m = try Self.makeManager(limits: limits)
        let prompt = try Self.boundary("What is the capital of France?")
        let t0 = Date()
        let a = try m.open(try Self.request(), owner: "alice", now: t0).session
        let b = try m.open(try Self.request(), owner: "bob", now: t0).session
        let c = try m.open(try Self.request(), owner: "carol", now: t0).session
        XCTAssertEqual(m.expireIdle(now: t0.addingTimeInterval(30)), 0)
        // Any use refreshes: bob appends at t0+50, carol resumes at t0+55.
        try m.append(b, owner: "bob", firstPosition: 0, rows: 2, payload: try Self.payload(prompt, 0..<2), now: t0.addingTimeInterval(50))
        XCTAssertEqual(try m.open(try Self.request(resume: c), owner: "carol", now: t0.addingTimeInterval(55)).session, c)
        XCTAssertEqual(m.expireIdle(now: t0.addingTimeInterval(59)), 0)
        XCTAssertEqual(m.expireIdle(now: t0.addingTimeInterval(61)), 1)
        XCTAssertNil(m.usage(a))
        Self.expect(.unknownSession, "the expired session") { try m.truncate(a, owner: "alice", to: 0) }
        XCTAssertEqual(m.sessionCount, 2)
        XCTAssertEqual(m.evictions, 0, "expiry is not eviction")
        XCTAssertEqual(m.expireIdle(now: t0.addingTimeInterval(116)), 2)
        XCTAssertEqual(m.sessionCount, 0)
        XCTAssertEqual(m.reservedBytes, 0)
        Self.expect(.unknownSession, "bob after expiry") { try m.truncate(b, owner: "bob", to: 0) }
    }

    func testAdmissionExpiresIdleSessionsBeforeEvicting() throws {
        let bpp = try Self.makeManager().bytesPerPosition
        var limits = CloudLimits()
        limits.memoryBudgetBytes = 2 * 64 * bpp + bpp / 2
        limits.idleTimeoutSeconds = 60
        let m = try Self.makeManager(limits: limits)
        let t0 = Date()
        let a = try m.open(try Self.request(), owner: "alice", now: t0).session
        let b = try m.open(try Self.request(), owner: "bob", now: t0.addingTimeInterval(30)).session
        // At t0+70 alice is idle (expired), bob is not: the new session takes alice's room without an eviction.
        let c = try m.open(try Self.request(), owner: "carol", now: t0.addingTimeInterval(70)).session
        XCTAssertEqual(m.evictions, 0)
        XCTAssertNil(m.usage(a))
        XCTAssertNotNil(m.usage(b))
        XCTAssertNotNil(m.usage(c))
    }

    // MARK: - 6. Resume

    func testResumeReturnsPositionsHeldAndOnlyToItsOwner() throws {
        let m = try Self.makeManager()
        let prompt = try Self.boundary("What is the capital of France?")
        let n = prompt.count
        let opened = try m.open(try Self.request(maxPositions: 100), owner: "alice")
        let id = opened.session
        XCTAssertEqual(opened.positionsHeld, 0)
        try m.append(id, owner: "alice", firstPosition: 0, rows: n, payload: try Self.payload(prompt, 0..<n))
        _ = try Self.infer(m, InferJob(session: id, owner: "alice", position: 4))

        // Held = computed (5) + pending (n - 5).
        let resumed = try m.open(try Self.request(maxPositions: 7, resume: id), owner: "alice")
        XCTAssertEqual(resumed.session, id)
        XCTAssertEqual(resumed.positionsHeld, n)
        XCTAssertEqual(resumed.maxPositions, 100, "a resumed session keeps its declared length")
        XCTAssertEqual(resumed.maxRowsPerAppend, m.limits.maxRowsPerAppend)
        XCTAssertEqual(m.sessionCount, 1, "resume creates no session")
        XCTAssertEqual(m.reservedBytes, 100 * m.bytesPerPosition)

        Self.expect(.unknownSession, "resume by another owner") {
            try m.open(try Self.request(resume: id), owner: "mallory")
        }
        Self.expect(.unknownSession, "resume of an unknown id") {
            try m.open(try Self.request(resume: SessionID.random()), owner: "alice")
        }
        Self.expect(.invalidArgument, "resume with another wire format") {
            try m.open(try Self.request(wire: .q8, resume: id), owner: "alice")
        }
        var wrongPrint = try Self.request(resume: id)
        wrongPrint.fingerprint = Array(wrongPrint.fingerprint.reversed())
        Self.expect(.fingerprintMismatch, "resume with another model") { try m.open(wrongPrint, owner: "alice") }
        var wrongSplit = try Self.request(resume: id)
        wrongSplit.splitLayer = 16
        Self.expect(.fingerprintMismatch, "resume at another split") { try m.open(wrongSplit, owner: "alice") }

        // After the resume the session continues where it was: INFER the last position.
        let reply = try Self.infer(m, InferJob(session: id, owner: "alice", position: n - 1))
        XCTAssertEqual(reply.rowsComputed, n - 5)
        XCTAssertEqual(try m.open(try Self.request(resume: id), owner: "alice").positionsHeld, n)

        // After truncation, resume reports the shorter length; after close, the session is gone.
        XCTAssertEqual(try m.truncate(id, owner: "alice", to: 3), 3)
        XCTAssertEqual(try m.open(try Self.request(resume: id), owner: "alice").positionsHeld, 3)
        try m.close(id, owner: "alice")
        Self.expect(.unknownSession, "resume after close") { try m.open(try Self.request(resume: id), owner: "alice") }
    }
}
