import Foundation
import XCTest

/// Locates data the tests need (shared by every test target) but git does not hold (installed by scripts/test.sh).
public enum TestResources {
    public static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The default model: $COLLM_MODEL, else <repo>/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf.
    public static func modelPath() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let path = env["COLLM_MODEL"] ?? repoRoot.appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        try require(path, hint: "run scripts/test.sh (it fetches the model)")
        return path
    }

    /// The Gemma 3 270M Q4_K_M file: $COLLM_GEMMA_MODEL, else <repo>/.cache/models/gemma-3-270m-q4_k_m.gguf.
    public static func gemmaModelPath() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let path = env["COLLM_GEMMA_MODEL"] ?? repoRoot.appendingPathComponent(".cache/models/gemma-3-270m-q4_k_m.gguf").path
        try require(path, hint: "run scripts/test.sh (scripts/fetch-gemma.sh fetches it)")
        return path
    }

    /// A file from the test-data folder ($COLLM_TEST_DATA or <repo>/.cache/test-data).
    public static func dataFile(_ name: String) throws -> String {
        let env = ProcessInfo.processInfo.environment
        let dir = env["COLLM_TEST_DATA"] ?? repoRoot.appendingPathComponent(".cache/test-data").path
        let path = (dir as NSString).appendingPathComponent(name)
        try require(path, hint: "run scripts/fetch-test-data.sh")
        return path
    }

    /// Missing data fails the test (so CI cannot pass by skipping), unless COLLM_ALLOW_MISSING_DATA=1.
    private static func require(_ path: String, hint: String) throws {
        if FileManager.default.fileExists(atPath: path) { return }
        if ProcessInfo.processInfo.environment["COLLM_ALLOW_MISSING_DATA"] == "1" {
            throw XCTSkip("\(path) is missing (\(hint))")
        }
        XCTFail("\(path) is missing: \(hint)")
        throw CocoaError(.fileNoSuchFile)
    }
}
