import XCTest

@testable import Calibration

final class ExitOutcomesTests: XCTestCase {
    private func outcomes(_ pairs: [(Float, Bool)]) -> ExitOutcomes {
        var o = ExitOutcomes()
        o.confidence = pairs.map(\.0)
        o.agrees = pairs.map(\.1)
        return o
    }

    func testCurvePointsCountExitedTokensAndTheirAgreement() {
        let o = outcomes([(0.95, true), (0.9, true), (0.8, false), (0.7, true), (0.4, false)])
        XCTAssertEqual(o.agreement, 0.6, accuracy: 1e-12)
        let p = o.point(threshold: 0.75)
        XCTAssertEqual(p.exitRate, 0.6, accuracy: 1e-12)
        XCTAssertEqual(p.agreement, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(o.point(threshold: 0.99).agreement, 1, "nothing exits: vacuous agreement")
        XCTAssertEqual(o.point(threshold: 0.99).exitRate, 0)
        XCTAssertEqual(o.curve.count, 11)
    }

    func testExitRateAtPrecisionTakesTheLargestQualifyingPrefix() {
        // Ranked: T T F T F -> precision of prefixes 1, 1, .67, .75, .6
        let o = outcomes([(0.95, true), (0.9, true), (0.8, false), (0.7, true), (0.4, false)])
        XCTAssertEqual(o.exitRate(atPrecision: 0.9), 0.4, accuracy: 1e-12)
        XCTAssertEqual(o.exitRate(atPrecision: 0.75), 0.8, accuracy: 1e-12)
        XCTAssertEqual(o.exitRate(atPrecision: 0.5), 1.0, accuracy: 1e-12)
        XCTAssertEqual(o.threshold(forPrecision: 0.75, minimum: 1), 0.7)
        XCTAssertEqual(o.threshold(forPrecision: 0.9, minimum: 3), 1.01, "too few tokens reach 0.9: never exit")
    }

    func testTiedConfidencesExitTogether() {
        // The two 0.9s cannot be separated by a threshold: prefix 2 (one right of two) is the only cut there.
        let o = outcomes([(0.99, true), (0.9, false), (0.9, true), (0.5, false)])
        XCTAssertEqual(o.exitRate(atPrecision: 0.6), 0.75, accuracy: 1e-12)
        XCTAssertEqual(o.exitRate(atPrecision: 0.7), 0.25, accuracy: 1e-12)
    }
}

extension ExitOutcomesTests {
    /// Each token goes to the first confident exit; the cloud (full model) answers the rest correctly.
    func testCascadeSendsEachTokenToTheFirstConfidentExit() {
        let shallow = outcomes([(0.95, true), (0.2, false), (0.99, false), (0.1, true)])
        let deep = outcomes([(0.99, false), (0.9, true), (0.99, true), (0.3, false)])
        let c = Calibrator.cascade([shallow, deep], thresholds: [0.9, 0.8])
        // Token 0: shallow (right); 1: deep (right); 2: shallow (wrong); 3: cloud.
        XCTAssertEqual(c.edgeRate, 0.75, accuracy: 1e-12)
        XCTAssertEqual(c.edgePrecision, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(c.agreement, 0.75, accuracy: 1e-12)
    }
}
