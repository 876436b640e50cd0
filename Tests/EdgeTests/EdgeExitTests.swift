import CollabCore
import XCTest
import TestSupport

@testable import Edge
@testable import Exits
@testable import LLM

final class EdgeExitTests: XCTestCase {
    /// docs/ARCHITECTURE.md section 2 (collab, deferred layers): tokens that exit early have their remaining edge layers computed
    /// with the next token; the KV cache ends up equal to one where every token ran every layer.
    func testKVCacheAfterEarlyExitsEqualsEveryLayerRun() async throws {
        let p = try CollabFixture.load()
        // Logit-lens exits at low thresholds fire often but not always, so rows are deferred and completed.
        var options = EdgeOptions(mode: .edge, exits: [ExitHead(layer: 5, threshold: 0.95), ExitHead(layer: 10, threshold: 0.6)])
        options.maxTokens = 24
        let runner = try EdgeRunner(model: p.edge, tokenizer: p.tokenizer, fingerprint: p.fingerprint, options: options, connector: nil)
        let prompt = CollabFixture.chat("Tell me about the sea.", p.tokenizer)
        let r = try await runner.generate(prompt: prompt)
        let sources = Set(r.result.sources)
        XCTAssertTrue(sources.contains(.edge(layer: 15)) && !sources.isDisjoint(with: [.edge(layer: 5), .edge(layer: 10)]),
                      "exits must both fire and not fire: \(r.result.sources)")
        let cache = try XCTUnwrap(runner.lastCache)
        let complete = cache.count(layer: 14)
        guard complete > prompt.count else { return XCTFail("no generated position completed every edge layer") }

        let reference = p.edge.makeCache(capacity: complete + 1)
        var h = try p.edge.embed(Array((prompt + r.result.tokens).prefix(complete)))
        try p.edge.forward(&h, cache: reference)
        for layer in [0, 4, 5, 9, 10, 14] {
            let a = cache.snapshot(layer: layer), b = reference.snapshot(layer: layer)
            let n = complete * p.edge.config.kvDim
            XCTAssertLessThan(relativeError(Array(a.keys.prefix(n)), Array(b.keys.prefix(n))), 1e-5, "keys of layer \(layer)")
            XCTAssertLessThan(relativeError(Array(a.values.prefix(n)), Array(b.values.prefix(n))), 1e-5, "values of layer \(layer)")
        }
    }

    func testLatencyAwareThresholdsMoveWithTheRoundTripWithinBounds() {
        let policy = LatencyAwareThresholds(minimum: 0.6, maximum: 0.95, referenceSeconds: 0.02, slope: 0.05)
        XCTAssertEqual(policy.threshold(base: 0.9, roundTrip: 0.02), 0.9, accuracy: 1e-6)
        XCTAssertEqual(policy.threshold(base: 0.9, roundTrip: 0.08), 0.8, accuracy: 1e-6, "two doublings lower it by 0.1")
        XCTAssertEqual(policy.threshold(base: 0.9, roundTrip: 0.01), 0.95, accuracy: 1e-6, "a near cloud raises it, up to the bound")
        XCTAssertEqual(policy.threshold(base: 0.9, roundTrip: 10), 0.6, accuracy: 1e-6, "never below the bound")
        XCTAssertEqual(policy.threshold(base: 0.9, roundTrip: nil), 0.9, accuracy: 1e-6)
        var estimate = RoundTripEstimate()
        estimate.record(0.1)
        estimate.record(0.02)
        XCTAssertEqual(estimate.seconds!, 0.08, accuracy: 1e-12)
    }
}
