import Foundation
import XCTest

@testable import LLM

final class SamplerTests: XCTestCase {
    private func softmax(_ x: [Float]) -> [Double] {
        let m = x.max()!
        let e = x.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// Draw `n` samples and return the frequency of each id.
    private func frequencies(_ params: SamplingParameters, _ logits: [Float], n: Int, history: [Int] = []) -> [Double] {
        var sampler = Sampler(parameters: params)
        var counts = [Int](repeating: 0, count: logits.count)
        for _ in 0..<n { counts[sampler.sample(logits: logits, history: history)] += 1 }
        return counts.map { Double($0) / Double(n) }
    }

    // MARK: parameters

    func testDefaultsAreGreedyAndValid() throws {
        let p = SamplingParameters()
        XCTAssertEqual(p.temperature, 0)
        XCTAssertEqual(p.topK, 0)
        XCTAssertEqual(p.topP, 1)
        XCTAssertEqual(p.minP, 0)
        XCTAssertEqual(p.repetitionPenalty, 1)
        XCTAssertEqual(p.repeatLastN, 64)
        XCTAssertNil(p.seed)
        XCTAssertTrue(p.isGreedy)
        try p.validate()
    }

    func testValidationRejectsOutOfRangeValues() {
        let bad: [(SamplingParameters, String)] = [
            (SamplingParameters(temperature: -0.1), "temperature"),
            (SamplingParameters(temperature: .nan), "temperature"),
            (SamplingParameters(temperature: .infinity), "temperature"),
            (SamplingParameters(topK: -1), "top_k"),
            (SamplingParameters(topP: 0), "top_p"),
            (SamplingParameters(topP: 1.5), "top_p"),
            (SamplingParameters(topP: -0.2), "top_p"),
            (SamplingParameters(minP: -0.1), "min_p"),
            (SamplingParameters(minP: 1.1), "min_p"),
            (SamplingParameters(repetitionPenalty: 0), "repetition_penalty"),
            (SamplingParameters(repetitionPenalty: -1), "repetition_penalty"),
            (SamplingParameters(repeatLastN: -2), "repeat_last_n"),
        ]
        for (params, field) in bad {
            XCTAssertThrowsError(try params.validate(), "\(params)") { error in
                guard let e = error as? SamplingParametersError else { return XCTFail("wrong error type \(error)") }
                XCTAssertEqual(e.field, field)
                XCTAssertTrue(e.description.contains(field), e.description)
            }
        }
        XCTAssertNoThrow(try SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05,
                                                repetitionPenalty: 1.1, repeatLastN: -1, seed: 3).validate())
    }

    func testCodableUsesSnakeCaseAndDefaults() throws {
        let decoded = try JSONDecoder().decode(SamplingParameters.self, from: Data("{}".utf8))
        XCTAssertEqual(decoded, SamplingParameters())
        let p = SamplingParameters(temperature: 0.5, topK: 7, topP: 0.8, minP: 0.1, repetitionPenalty: 1.3,
                                   repeatLastN: 32, seed: 42)
        let data = try JSONEncoder().encode(p)
        let json = String(decoding: data, as: UTF8.self)
        for key in ["\"top_k\"", "\"top_p\"", "\"min_p\"", "\"repetition_penalty\"", "\"repeat_last_n\"", "\"seed\""] {
            XCTAssertTrue(json.contains(key), json)
        }
        XCTAssertEqual(try JSONDecoder().decode(SamplingParameters.self, from: data), p)
        let partial = try JSONDecoder().decode(
            SamplingParameters.self, from: Data(#"{"temperature": 0.8, "top_k": 5}"#.utf8))
        XCTAssertEqual(partial, SamplingParameters(temperature: 0.8, topK: 5))
    }

    // MARK: greedy

    func testGreedyIsArgmax() {
        var sampler = Sampler()
        XCTAssertEqual(sampler.sample(logits: [0.1, 2.5, -1, 2.4]), 1)
        XCTAssertEqual(sampler.sample(logits: [-5, -3, -4]), 1)
        XCTAssertEqual(sampler.sample(logits: [Float](repeating: 0, count: 10) + [1]), 10)
    }

    func testGreedyTiesGoToLowestId() {
        var sampler = Sampler()
        XCTAssertEqual(sampler.sample(logits: [1, 3, 0, 3, 3]), 1)
        XCTAssertEqual(sampler.sample(logits: [2, 2]), 0)
        XCTAssertEqual(sampler.sample(logits: [.nan, 1, 1]), 1)
    }

    func testGreedyOnLargeVocabulary() {
        var logits = [Float](repeating: 0, count: 49_152)
        var g = Xoshiro256StarStar(seed: 9)
        for i in logits.indices { logits[i] = Float(g.nextUnitDouble() * 10 - 5) }
        logits[31_337] = 6
        var sampler = Sampler()
        XCTAssertEqual(sampler.sample(logits: logits), 31_337)
    }

    // MARK: randomness

    func testSeededSamplingIsReproducible() {
        var g = Xoshiro256StarStar(seed: 1)
        let logits = (0..<1000).map { _ in Float(g.nextUnitDouble() * 4) }
        let params = SamplingParameters(temperature: 1, topK: 50, topP: 0.95, seed: 1234)
        var a = Sampler(parameters: params)
        var b = Sampler(parameters: params)
        let seqA = (0..<200).map { _ in a.sample(logits: logits) }
        let seqB = (0..<200).map { _ in b.sample(logits: logits) }
        XCTAssertEqual(seqA, seqB)
        XCTAssertGreaterThan(Set(seqA).count, 5, "draws should vary")
        var c = Sampler(parameters: SamplingParameters(temperature: 1, topK: 50, topP: 0.95, seed: 1235))
        let seqC = (0..<200).map { _ in c.sample(logits: logits) }
        XCTAssertNotEqual(seqA, seqC)
    }

    func testRandomGeneratorsAreDeterministic() {
        // SplitMix64 reference values for seed 1234567 (from the published reference implementation).
        var sm = SplitMix64(seed: 1_234_567)
        XCTAssertEqual(sm.next(), 6_457_827_717_110_365_317)
        XCTAssertEqual(sm.next(), 3_203_168_211_198_807_973)
        var x = Xoshiro256StarStar(seed: 7)
        var y = Xoshiro256StarStar(seed: 7)
        for _ in 0..<100 { XCTAssertEqual(x.next(), y.next()) }
        for _ in 0..<1000 {
            let u = x.nextUnitDouble()
            XCTAssertTrue(u >= 0 && u < 1)
        }
    }

    func testFrequenciesAtTemperatureOneMatchSoftmax() {
        let logits: [Float] = [1.0, 0.5, 0.0, -1.0, 2.0]
        let expected = softmax(logits)
        let n = 100_000
        let freq = frequencies(SamplingParameters(temperature: 1, seed: 99), logits, n: n)
        for i in logits.indices {
            // 5 standard deviations of a binomial proportion.
            let tol = 5 * (expected[i] * (1 - expected[i]) / Double(n)).squareRoot()
            XCTAssertEqual(freq[i], expected[i], accuracy: tol, "token \(i)")
        }
    }

    func testFrequenciesOverAWiderVocabularyMatchSoftmax() {
        // 101 tokens: exercises the vectorised block walk (and its scalar tail) of the unfiltered draw.
        var g = Xoshiro256StarStar(seed: 31)
        var logits = (0..<101).map { _ in Float(g.nextUnitDouble() * 3) }
        logits[50] = -.infinity
        logits[99] = 4
        let expected = softmax(logits)
        let n = 60_000
        let freq = frequencies(SamplingParameters(temperature: 1, seed: 17), logits, n: n)
        XCTAssertEqual(freq[50], 0)
        var chiSquare = 0.0
        for i in logits.indices where expected[i] > 0 {
            let diff = freq[i] * Double(n) - expected[i] * Double(n)
            chiSquare += diff * diff / (expected[i] * Double(n))
        }
        // 99 degrees of freedom: mean 99, sd ~14; 170 is far in the tail.
        XCTAssertLessThan(chiSquare, 170)
    }

    func testVectorisedExpAndSums() {
        var x: [Float] = stride(from: -90.0, through: 88.0, by: 0.37).map { Float($0) }
        x += [-.infinity, .nan, 0, 1, -1]
        x.withUnsafeBufferPointer { xs in
            var out = [Float](repeating: -1, count: xs.count)
            let total = out.withUnsafeMutableBufferPointer { vectorExpSum(xs, shift: 0, into: $0.baseAddress!) }
            for (i, v) in xs.enumerated() {
                let e = v.isNaN || v < -87 ? 0 : Foundation.exp(Double(v))
                if e == 0 {
                    XCTAssertEqual(out[i], 0, "x=\(v)")
                } else {
                    XCTAssertEqual(Double(out[i]), e, accuracy: e * 1e-6, "x=\(v)")
                }
            }
            XCTAssertTrue(total.isInfinite, "sums past Float range overflow; callers shift by the max")
            // Shifted by the max, as every caller does: terms in (0, 1], sum exact to float rounding.
            let m = vectorMax(xs)
            XCTAssertEqual(m, xs.filter { !$0.isNaN }.max()!)
            let shifted = vectorExpSum(xs, shift: m)
            var reference = 0.0
            for v in xs where !v.isNaN && v - m >= -87 { reference += Foundation.exp(Double(v - m)) }
            XCTAssertEqual(shifted, reference, accuracy: reference * 1e-6)
        }
        XCTAssertEqual([Float]().withUnsafeBufferPointer { vectorMax($0) }, -.infinity)
        XCTAssertEqual(Sampler.argmax([Float](repeating: .nan, count: 40)), 0)
        XCTAssertEqual(Sampler.argmax([Float](repeating: -.infinity, count: 40) + [-1]), 40)
        var ties = [Float](repeating: 0, count: 70)
        ties[33] = 2
        ties[65] = 2
        XCTAssertEqual(Sampler.argmax(ties), 33)
    }

    func testTemperatureSharpensAndFlattens() {
        let logits: [Float] = [1.0, 0.0]
        let n = 40_000
        let cold = frequencies(SamplingParameters(temperature: 0.5, seed: 5), logits, n: n)
        let hot = frequencies(SamplingParameters(temperature: 2, seed: 6), logits, n: n)
        let expectCold = softmax([2, 0])[0]
        let expectHot = softmax([0.5, 0])[0]
        XCTAssertEqual(cold[0], expectCold, accuracy: 0.01)
        XCTAssertEqual(hot[0], expectHot, accuracy: 0.01)
    }

    // MARK: filters

    func testTopKOneEqualsGreedy() {
        var g = Xoshiro256StarStar(seed: 3)
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1.5, topK: 1, seed: 8))
        for _ in 0..<50 {
            let logits = (0..<500).map { _ in Float(g.nextUnitDouble() * 6) }
            XCTAssertEqual(sampler.sample(logits: logits), Sampler.argmax(logits))
        }
    }

    func testTopKKeepsOnlyTheKBest() {
        let logits: [Float] = [0.0, 3.0, 1.0, 2.9, -2.0, 2.0]
        let freq = frequencies(SamplingParameters(temperature: 1, topK: 2, seed: 11), logits, n: 20_000)
        XCTAssertEqual(freq[1] + freq[3], 1.0, accuracy: 1e-12)
        let expected = softmax([3.0, 2.9])
        XCTAssertEqual(freq[1], expected[0], accuracy: 0.02)
    }

    func testTopKSelectionMatchesFullSort() {
        var g = Xoshiro256StarStar(seed: 21)
        var logits = (0..<49_152).map { _ in Float((g.nextUnitDouble() * 20).rounded()) }  // many ties
        logits[100] = .nan
        for k in [1, 5, 40, 1000, 20_000] {
            let got = logits.withUnsafeBufferPointer { selectTop($0, k: k) }
            let pairs: [(id: Int, logit: Float)] = logits.enumerated().map { item -> (id: Int, logit: Float) in
                (id: item.offset, logit: item.element.isNaN ? -Float.infinity : item.element)
            }
            let sorted = pairs.sorted { (a: (id: Int, logit: Float), b: (id: Int, logit: Float)) -> Bool in
                a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
            }
            let expected: [Int] = sorted.prefix(k).map { $0.id }
            XCTAssertEqual(got.map { Int($0.id) }, expected, "k=\(k)")
        }
    }

    func testTopPKeepsTheMinimalNucleus() {
        // probabilities 0.5, 0.3, 0.15, 0.05
        let probs: [Double] = [0.15, 0.5, 0.05, 0.3]
        let logits = probs.map { Float(Foundation.log($0)) }
        // p = 0.7: {1 (0.5), 3 (0.3)} reaches 0.8 >= 0.7; 1 alone (0.5) does not.
        var freq = frequencies(SamplingParameters(temperature: 1, topP: 0.7, seed: 4), logits, n: 20_000)
        XCTAssertEqual(freq[0], 0)
        XCTAssertEqual(freq[2], 0)
        XCTAssertEqual(freq[1], 0.5 / 0.8, accuracy: 0.02)
        // p = 0.49: reached by token 1 alone (exact equality, p = 0.5, is at the mercy of float rounding).
        freq = frequencies(SamplingParameters(temperature: 1, topP: 0.49, seed: 4), logits, n: 2000)
        XCTAssertEqual(freq[1], 1)
        // p = 0.9: three tokens.
        freq = frequencies(SamplingParameters(temperature: 1, topP: 0.9, seed: 4), logits, n: 20_000)
        XCTAssertEqual(freq[2], 0)
        XCTAssertGreaterThan(freq[0], 0.1)
    }

    /// Reference nucleus by full sort: ids of the shortest best-first prefix whose mass reaches p.
    private func referenceNucleus(_ logits: [Float], p: Float) -> Set<Int> {
        let probs = softmax(logits)
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        var cumulative = 0.0
        var kept = Set<Int>()
        for id in order {
            kept.insert(id)
            cumulative += probs[id]
            if cumulative >= Double(p) { break }
        }
        return kept
    }

    func testNucleusMatchesFullSortReference() {
        var g = Xoshiro256StarStar(seed: 12)
        for trial in 0..<6 {
            let n = trial < 3 ? 3000 : 49_152
            var logits = (0..<n).map { _ in Float(g.nextUnitDouble() * Double(2 + trial * 3)) }
            // Ties and far-away tokens too.
            for i in stride(from: 0, to: n, by: 97) { logits[i] = logits[0] }
            logits[n - 1] = -1000
            logits[n / 2] = -.infinity
            for p: Float in [0.1, 0.5, 0.9, 0.99] {
                let got = logits.withUnsafeBufferPointer { Sampler.nucleus($0, topP: p) }
                XCTAssertEqual(Set(got.map { Int($0.id) }), referenceNucleus(logits, p: p), "trial \(trial) p \(p)")
                XCTAssertEqual(got.count, Set(got.map(\.id)).count)
            }
        }
    }

    func testTopPOnLargeVocabularyWithoutTopK() {
        // A wide tail: the nucleus holds tens of thousands of tokens.
        var g = Xoshiro256StarStar(seed: 5)
        var logits = (0..<49_152).map { _ in Float(g.nextUnitDouble()) }
        logits[7] = 12
        let probs = softmax(logits)
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1, topP: Float(probs[7]) - 0.01, seed: 1))
        for _ in 0..<20 { XCTAssertEqual(sampler.sample(logits: logits), 7) }

        let nucleus = referenceNucleus(logits, p: 0.9)
        XCTAssertGreaterThan(nucleus.count, 10_000)
        let mass = nucleus.reduce(0.0) { $0 + probs[$1] }
        sampler = Sampler(parameters: SamplingParameters(temperature: 1, topP: 0.9, seed: 1))
        let n = 300
        var sevens = 0
        for _ in 0..<n {
            let id = sampler.sample(logits: logits)
            XCTAssertTrue(nucleus.contains(id), "token \(id) outside the nucleus")
            if id == 7 { sevens += 1 }
        }
        let expected = probs[7] / mass
        XCTAssertEqual(Double(sevens) / Double(n), expected, accuracy: 5 * (expected * (1 - expected) / Double(n)).squareRoot())
    }

    func testMinPDropsUnlikelyTokens() {
        // p relative to max: 1, 0.5, 0.2, 0.04
        let logits = [1.0, 0.5, 0.2, 0.04].map { Float(Foundation.log($0)) }
        let freq = frequencies(SamplingParameters(temperature: 1, minP: 0.3, seed: 2), logits, n: 20_000)
        XCTAssertEqual(freq[2], 0)
        XCTAssertEqual(freq[3], 0)
        XCTAssertEqual(freq[0], 1 / 1.5, accuracy: 0.02)
        // With top-k on too (sorted path) the same tokens survive.
        let freq2 = frequencies(SamplingParameters(temperature: 1, topK: 3, minP: 0.3, seed: 2), logits, n: 20_000)
        XCTAssertEqual(freq2[2], 0)
        XCTAssertEqual(freq2[0], 1 / 1.5, accuracy: 0.02)
    }

    func testRepetitionPenaltyFlipsAGreedyChoice() {
        let logits: [Float] = [2.0, 1.8, -1.0]
        var plain = Sampler()
        XCTAssertEqual(plain.sample(logits: logits, history: [0]), 0)
        var penalised = Sampler(parameters: SamplingParameters(repetitionPenalty: 1.3))
        // 2.0 / 1.3 = 1.54 < 1.8
        XCTAssertEqual(penalised.sample(logits: logits, history: [0]), 1)
        // Out of the window: no penalty.
        var windowed = Sampler(parameters: SamplingParameters(repetitionPenalty: 1.3, repeatLastN: 2))
        XCTAssertEqual(windowed.sample(logits: logits, history: [0, 2, 2]), 0)
        XCTAssertEqual(windowed.sample(logits: logits, history: [2, 0, 2]), 1)
        var off = Sampler(parameters: SamplingParameters(repetitionPenalty: 1.3, repeatLastN: 0))
        XCTAssertEqual(off.sample(logits: logits, history: [0]), 0)
    }

    func testRepetitionPenaltyMultipliesNegativeLogitsOncePerToken() {
        var logits: [Float] = [2.0, -1.0, 0.0, 3.0]
        Sampler.applyRepetitionPenalty(to: &logits, history: [0, 1, 1, 1, 2, 99, -4], penalty: 2, lastN: -1)
        XCTAssertEqual(logits, [1.0, -2.0, 0.0, 3.0])
        // Negative logit made more negative flips a choice between two negatives.
        var sampler = Sampler(parameters: SamplingParameters(repetitionPenalty: 1.5))
        XCTAssertEqual(sampler.sample(logits: [-1.0, -1.2], history: [0]), 1)
    }

    // MARK: log-probabilities

    func testLogSoftmaxMatchesHandComputedValues() {
        // log-softmax of [1, 2, 3]: x - log(e + e^2 + e^3) = x - 3.40760596
        let got = logSoftmax([1, 2, 3] as [Float])
        let expected: [Float] = [-2.40760596, -1.40760596, -0.40760596]
        for i in 0..<3 { XCTAssertEqual(got[i], expected[i], accuracy: 1e-5) }
        XCTAssertEqual(logSumExp([0, 0] as [Float]), Float(Foundation.log(2.0)), accuracy: 1e-6)
    }

    func testLogSoftmaxIsStableForHugeLogits() {
        let got = logSoftmax([1000, 1000, -1000] as [Float])
        XCTAssertEqual(got[0], -0.693147, accuracy: 1e-5)
        XCTAssertEqual(got[1], -0.693147, accuracy: 1e-5)
        XCTAssertTrue(got[2] < -1900 && got[2].isFinite)
        let sum = got.map { Foundation.exp(Double($0)) }.reduce(0, +)
        XCTAssertEqual(sum, 1, accuracy: 1e-6)
    }

    func testTopCandidatesAndLogProbability() {
        let logits: [Float] = [0.5, 3.0, 3.0, -1.0, 2.0]
        let lsm = logSoftmax(logits)
        let top = topCandidates(logits, k: 3)
        XCTAssertEqual(top.map(\.id), [1, 2, 4])
        for c in top { XCTAssertEqual(c.logprob, lsm[c.id], accuracy: 1e-6) }
        XCTAssertEqual(topCandidates(logits, k: 10).count, 5)
        XCTAssertTrue(topCandidates(logits, k: 0).isEmpty)
        XCTAssertEqual(logProbability(of: 3, in: logits), lsm[3], accuracy: 1e-6)
        XCTAssertEqual(logProbability(of: 1, in: logits), logits[1] - logSumExp(logits), accuracy: 1e-6)
    }

    // MARK: speed (sanity bound, not a benchmark)

    func testSamplingALargeVocabularyIsFast() {
        var g = Xoshiro256StarStar(seed: 77)
        let logits = (0..<49_152).map { _ in Float(g.nextUnitDouble() * 10) }
        var sampler = Sampler(parameters: SamplingParameters(temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05,
                                                             repetitionPenalty: 1.1, seed: 1))
        let history = Array(0..<64)
        let start = Date()
        for _ in 0..<20 { _ = sampler.sample(logits: logits, history: history) }
        let perCall = Date().timeIntervalSince(start) / 20
        // Generous: a debug build is slow; a release build is well under a millisecond.
        XCTAssertLessThan(perCall, 0.05)
    }
}
