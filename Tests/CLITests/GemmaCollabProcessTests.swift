import Foundation
import XCTest

/// The split, exit and collaboration machinery on a second architecture (issue 16): Gemma 3 270M
/// (18 layers, hidden 640, head dim 256, K-quants) split at layer 9, edge and cloud as processes.
final class GemmaCollabProcessTests: XCTestCase {
    private let prompts = ["What is the capital of France?", "Name three primary colors.", "Write a haiku about the sea.",
                           "Translate 'good morning' into Spanish.", "What is 12 times 12?"]

    private func gemmaPath() throws -> String {
        let path = ProcessInfo.processInfo.environment["COLLM_GEMMA_MODEL"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.cache/models/gemma-3-270m-q4_k_m.gguf").path
        // scripts/test.sh fetches it (scripts/fetch-gemma.sh): a missing file is a failure, not a skip.
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "no Gemma file at \(path): run scripts/fetch-gemma.sh")
        return path
    }

    private func generate(_ mode: String, _ prompt: String, _ extra: [String]) throws -> [String: Any] {
        let r = try CollmProcess.run(["generate", "--model", try gemmaPath(), "--chat", "--prompt", prompt, "--mode", mode,
                                      "--max-tokens", "12", "--threads", "1", "--json", "--split", "9"] + extra)
        XCTAssertEqual(r.status, 0, r.err)
        return try CollmProcess.json(r.out)
    }

    /// Collab with exits that never fire and f32 states equals the local full model token for token;
    /// spec (drafts from the split exit, verified by the cloud) is lossless.
    func testCollabAndSpecAtSplit9EqualLocal() throws {
        let cloud = try CloudProcess(extra: ["--model", try gemmaPath(), "--split", "9"])
        defer { cloud.stop() }
        for prompt in prompts {
            let local = try generate("local", prompt, [])
            let tokens = try XCTUnwrap(local["tokens"] as? [Int])
            XCTAssertFalse(tokens.isEmpty)
            let collab = try generate("collab", prompt, ["--cloud", cloud.address, "--wire", "f32", "--threshold", "1.01",
                                                         "--calibration", "none"])
            XCTAssertEqual(collab["tokens"] as? [Int], tokens, prompt)
            XCTAssertEqual(collab["sources"] as? [String], Array(repeating: "cloud", count: tokens.count), prompt)
            // One boundary state per position: 640 f32 values = 2,560 bytes (plus framing under 5%).
            let promptTokens = try XCTUnwrap(collab["prompt_tokens"] as? Int)
            let stoppedAtEOS = (collab["stop_reason"] as? String) == "eos"
            let positions = promptTokens + tokens.count - (stoppedAtEOS ? 0 : 1)
            let up = try XCTUnwrap(collab["bytes_up"] as? Int)
            XCTAssertGreaterThanOrEqual(up, positions * 2560)
            XCTAssertLessThan(Double(up), Double(positions * 2560) * 1.05)
            let spec = try generate("spec", prompt, ["--cloud", cloud.address, "--wire", "f32", "--threshold", "0.3",
                                                     "--calibration", "none"])
            XCTAssertEqual(spec["tokens"] as? [Int], tokens, prompt)
        }
    }
}
