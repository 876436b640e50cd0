import CollabCore
import XCTest
import TestSupport

@testable import Cloud
@testable import Edge
@testable import Exits
@testable import LLM

/// `spec` mode is lossless: whatever the drafts, the output equals the full model's (greedy, f32 wire),
/// and each VERIFY round trip decides at least one token.
final class SpeculativeTests: XCTestCase {
    private func spec(_ ids: [Int], threshold: Float, maxTokens: Int = 24, maxDraft: Int = 6,
                      connector: InProcessConnector? = nil, adapter: (any ExitTransform)? = nil) async throws -> EdgeGeneration {
        let p = try CollabFixture.load()
        var options = EdgeOptions(mode: .spec,
                                  exits: [ExitHead(layer: CollabFixture.split, threshold: threshold, adapter: adapter)])
        options.wire = .f32
        options.maxTokens = maxTokens
        options.maxDraftTokens = maxDraft
        let runner = try SpeculativeRunner(model: p.edge, tokenizer: p.tokenizer, fingerprint: p.fingerprint, options: options,
                                           connector: connector ?? InProcessConnector(engine: p.engine, owner: "spec"))
        return try await runner.generate(prompt: ids)
    }

    func testSpeculativeOutputEqualsTheFullModel() async throws {
        let p = try CollabFixture.load()
        let local = TextGenerator(model: p.full, tokenizer: p.tokenizer)
        var drafted = 0, accepted = 0, rounds = 0, tokens = 0
        for text in CollabFixture.prompts {
            let ids = CollabFixture.chat(text, p.tokenizer)
            let reference = try local.generate(prompt: ids, maxTokens: 24, sampling: .greedy)
            // A low threshold drafts eagerly, so many drafts are rejected and rolled back on both sides.
            let r = try await spec(ids, threshold: 0.2)
            XCTAssertEqual(r.result.tokens, reference.tokens, "spec differs for: \(text)")
            XCTAssertFalse(r.result.sources.contains { $0.isDegraded })
            drafted += r.speculation.drafted
            accepted += r.speculation.accepted
            rounds += r.speculation.rounds
            tokens += r.result.tokens.count
            // One OPEN plus one round trip per round; every round decides at least one token.
            XCTAssertEqual(r.result.traffic.roundTrips, 1 + r.speculation.rounds)
            XCTAssertLessThanOrEqual(r.speculation.rounds, r.result.tokens.count + 1)
        }
        print("spec: \(tokens) tokens in \(rounds) rounds, \(accepted) of \(drafted) draft tokens accepted")
        XCTAssertGreaterThan(drafted, accepted, "some drafts must have been rejected to exercise the rollback")
        XCTAssertGreaterThan(accepted, 0)
        XCTAssertLessThan(rounds, tokens + CollabFixture.prompts.count, "accepted drafts save round trips")
    }

    /// A layer-block drafter (its own KV cache) must see every position, also after rejected drafts
    /// are rolled back: the output still equals the full model's, over many rollbacks.
    func testLayerBlockDrafterFollowsRollbacks() async throws {
        let p = try CollabFixture.load()
        // f32 weights in the engine's layer code, to compare with the f32 training pass below.
        let drafter = try ExitLayer(block: try TransformerExitBlock(copying: 29, of: p.file), beside: p.edge,
                                    at: p.edge.layers.upperBound - 1, execution: .packed(.f32), capacity: 512)
        let local = TextGenerator(model: p.full, tokenizer: p.tokenizer)
        var drafted = 0, accepted = 0
        for text in CollabFixture.prompts.prefix(3) {
            let ids = CollabFixture.chat(text, p.tokenizer)
            let reference = try local.generate(prompt: ids, maxTokens: 16, sampling: .greedy)
            let r = try await spec(ids, threshold: 0.05, maxTokens: 16, adapter: drafter)
            XCTAssertEqual(r.result.tokens, reference.tokens, "spec with a layer drafter differs for: \(text)")
            // Its cache holds exactly the kept positions (rejected drafts forgotten): re-running the last
            // one against it equals the block over the final sequence.
            let n = drafter.observed
            XCTAssertGreaterThan(n, ids.count)
            XCTAssertLessThanOrEqual(n, ids.count + r.result.tokens.count, "rejected drafts left in the block's cache")
            var h = try p.edge.embed(Array((ids + r.result.tokens).prefix(n)))
            try p.edge.forward(&h, cache: p.edge.makeCache(capacity: n))
            let expected = try TransformerExitRunner(block: drafter.block.layer(0), pool: p.edge.pool, capacity: n).apply(h).row(n - 1)
            try drafter.observe(h.rows(n - 1..<n), at: n - 1)
            let z = try drafter.applyLast().values
            XCTAssertLessThan(zip(z, expected).map { abs($0 - $1) }.max()!, 1e-3 * (expected.map(abs).max()! + 1), text)
            drafted += r.speculation.drafted
            accepted += r.speculation.accepted
        }
        XCTAssertGreaterThan(drafted, accepted, "drafts must have been rejected and rolled back")
    }

    /// With the cloud unreachable, spec answers from the edge (degraded) instead of failing.
    func testSpeculativeDegradesWithoutTheCloud() async throws {
        let p = try CollabFixture.load()
        let connector = InProcessConnector(engine: p.engine, owner: "spec-offline")
        connector.available = false
        let r = try await spec(CollabFixture.chat("What is the capital of France?", p.tokenizer), threshold: 0.5,
                               maxTokens: 8, connector: connector)
        XCTAssertEqual(r.result.tokens.count, 8)
        XCTAssertTrue(r.result.sources.allSatisfy { $0 == TokenSource.degraded(layer: 15) }, "\(r.result.sources)")
    }

    /// Hostile VERIFYs get errors and leave the session usable.
    func testVerifyRejectsDraftsBeyondTheUploadedStates() async throws {
        let p = try CollabFixture.load()
        let link = try await InProcessConnector(engine: p.engine, owner: "verify-bad").connect()
        _ = try await link.open(OpenRequest(fingerprint: p.fingerprint, splitLayer: CollabFixture.split, wire: .f32, maxPositions: 64))
        let codec = try HiddenStateCodec(format: .f32, width: 576)
        var h = try p.edge.embed([1, 2, 3])
        try p.edge.forward(&h, cache: p.edge.makeCache(capacity: 8))
        try await link.append(firstPosition: 0, rows: 3, payload: codec.encode(h))
        for (first, draft) in [(2, [5]), (0, [5, 6, 7]), (1, [-1]), (1, [60_000])] {
            do {
                _ = try await link.verify(firstPosition: first, draft: draft, sampling: .greedy)
                XCTFail("VERIFY at \(first) with \(draft) must fail")
            } catch let error as CollabError {
                XCTAssertTrue([.outOfOrder, .invalidArgument].contains(error.code), "\(error)")
            }
        }
        let ok = try await link.verify(firstPosition: 0, draft: [5, 6], sampling: .greedy)
        XCTAssertLessThanOrEqual(ok.accepted, 2)
        XCTAssertEqual(ok.position, ok.accepted)
        await link.close()
    }
}
