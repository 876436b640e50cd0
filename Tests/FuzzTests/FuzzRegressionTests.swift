import FuzzTargets
import Foundation
import XCTest

/// Replays every committed fuzz input (Tests/FuzzRegressions/TARGET/*: crashers found by scripts/fuzz.sh, kept
/// after their fix) and every target's seeds through the same entry functions as the fuzzer, so a regression
/// fails the normal test run without libFuzzer. A crash here is a crash of the test process.
final class FuzzRegressionTests: XCTestCase {
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzRegressions")

    func replay(_ target: FuzzTarget) throws {
        try target.prepare()
        for seed in try target.seeds() { target.run(seed) }
        let dir = Self.regressions.appendingPathComponent(target.rawValue)
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []
        for file in files.sorted(by: { $0.path < $1.path }) where !file.lastPathComponent.hasPrefix(".") {
            target.run(Array(try Data(contentsOf: file)))
        }
    }

    func testGGUF() throws { try replay(.gguf) }
    func testTokenizer() throws { try replay(.tokenizer) }
    func testCodec() throws { try replay(.codec) }
    func testSession() throws { try replay(.session) }
    func testOpenAI() throws { try replay(.openai) }
}
