import Foundation
import XCTest

@testable import Calibration
import LLM
import TestSupport

/// The extra training prompts: distinct requests and passages, and a split that keeps them out of
/// threshold selection and the reported test part.
final class TrainingPromptsTests: XCTestCase {
    func testRequestsAreDistinctAndMixTemplatesAndTopics() {
        let all = TrainingPrompts.requests(count: .max)
        XCTAssertEqual(all.count, TrainingPrompts.requestCount)
        XCTAssertEqual(Set(all).count, all.count)
        XCTAssertTrue(all.allSatisfy { !$0.contains("{}") })
        let first = TrainingPrompts.requests(count: 30)
        XCTAssertEqual(first, Array(all.prefix(30)))
        // A prefix covers many topics and templates, not one template over the first topics.
        XCTAssertGreaterThan(Set(first.map { $0.split(separator: " ").prefix(2).joined(separator: " ") }).count, 8)
        XCTAssertTrue(Set(all).isDisjoint(with: CalibrationPromptSet.instructions + CalibrationPromptSet.questions))
    }

    func testPassagesStartAtSentencesAndSpreadOverTheText() {
        let sentences = (0..<200).map { "Sentence number \($0) has a few plain words in it." }
        let passages = TrainingPrompts.passages(from: sentences.joined(separator: " "), count: 10, words: 20)
        XCTAssertEqual(passages.count, 10)
        for p in passages {
            XCTAssertTrue(p.hasPrefix("Sentence number "), p)
            XCTAssertEqual(p.split(separator: " ").count, 20)
        }
        let firstNumbers = passages.map { Int($0.split(separator: " ")[2])! }
        XCTAssertEqual(firstNumbers, firstNumbers.sorted())
        XCTAssertGreaterThanOrEqual(firstNumbers.last!, 150, "passages spread to the end of the text")
        XCTAssertEqual(TrainingPrompts.passages(from: "too short", count: 5), [])
    }

    /// Prompts at or above `splitPrompts` only fit; selection and test rows come from the rest, and the
    /// greedy rows are each test prompt's first answer.
    func testTrainingOnlyPromptsNeverReachSelectionOrTest() throws {
        let (model, _, data) = try CalibrationModelTests.loadData()
        let promptCount = Set(data.prompt).count
        var options = Calibrator.Options(split: 15, exits: [15])
        options.splitPrompts = promptCount - 10
        let parts = Calibrator(model: model, options: options).parts(of: data)
        let extra = Set((promptCount - 10)..<promptCount)
        XCTAssertTrue(extra.isSubset(of: Set(parts.fit.map { Int(data.prompt[$0]) })))
        for rows in [parts.select, parts.test] { XCTAssertTrue(rows.allSatisfy { !extra.contains(Int(data.prompt[$0])) }) }
        XCTAssertEqual(Set(parts.fit + parts.select + parts.test).count, data.count)
        // Three answers per prompt: the greedy rows are one answer's worth of each test prompt.
        let greedy = Calibrator.greedyRows(parts.test, of: data).map { parts.test[$0] }
        let testPrompts = Set(parts.test.map { data.prompt[$0] })
        XCTAssertEqual(Set(greedy.map { data.prompt[$0] }), testPrompts)
        XCTAssertEqual(Set(greedy.map { data.sequence[$0] }).count, testPrompts.count)
        XCTAssertLessThan(greedy.count, parts.test.count / 2)
    }
}
