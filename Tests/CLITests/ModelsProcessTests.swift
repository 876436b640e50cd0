import Foundation
import XCTest

/// `collm models` and `--model NAME` as a user runs them, against a private cache that holds the test models by
/// symbolic link (nothing is downloaded).
final class ModelsProcessTests: XCTestCase {
    private var cache = ""

    private static var gemmaPath: String {
        ProcessInfo.processInfo.environment["COLLM_GEMMA_MODEL"]
            ?? CollmProcess.repoRoot.appendingPathComponent(".cache/models/gemma-3-270m-q4_k_m.gguf").path
    }

    override func setUpWithError() throws {
        cache = (NSTemporaryDirectory() as NSString).appendingPathComponent("collm-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: cache + "/models", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: cache)
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try CollmProcess.run(arguments, environment: ["COLLM_CACHE": cache, "COLLM_MODEL": ""])
    }

    func testModelsListsTheCatalogAndTheCache() throws {
        let empty = try run(["models"])
        XCTAssertEqual(empty.status, 0, empty.err)
        let lines = empty.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, empty.out)
        XCTAssertTrue(lines[0].hasPrefix("NAME"), empty.out)
        for (line, fields) in zip(lines.dropFirst(), [
            ["smollm2-135m (default)", "llama", "Q4_1", "98 MB", "b179c9523d0e", "not cached"],
            ["gemma-3-270m", "gemma3", "Q4_K_M", "253 MB", "a5fd3b62230a", "not cached"],
        ]) {
            for field in fields { XCTAssertTrue(line.contains(field), "\(field) not in \(line)") }
        }

        // Cached (not yet verified), then verified by a run that uses it by name.
        let linked = cache + "/models/gemma-3-270m-q4_k_m.gguf"
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: Self.gemmaPath)
        XCTAssertTrue(try run(["models"]).out.contains("\(linked) (not verified yet)"))
        let tokens = try run(["tokenize", "--model", "gemma-3-270m", "--text", "Hello", "--json"])
        XCTAssertEqual(tokens.status, 0, tokens.err)
        XCTAssertTrue(tokens.err.contains("verifying sha256"), tokens.err)

        let listing = try run(["models", "--json"])
        XCTAssertEqual(listing.status, 0, listing.err)
        let json = try CollmProcess.json(listing.out)
        XCTAssertEqual(json["cache"] as? String, cache)
        let models = try XCTUnwrap(json["models"] as? [[String: Any]])
        XCTAssertEqual(models.map { $0["name"] as? String }, ["smollm2-135m", "gemma-3-270m"])
        XCTAssertEqual(models[1]["path"] as? String, linked)
        XCTAssertEqual(models[1]["verified"] as? Bool, true)
        XCTAssertEqual(models[1]["sha256"] as? String, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")
        XCTAssertEqual(models[1]["size"] as? Int, 253_113_024)
        XCTAssertEqual(models[0]["default"] as? Bool, true)
        XCTAssertNil(models[0]["path"] as? String)
    }

    func testUnknownModelNameListsTheCatalog() throws {
        for arguments in [["generate", "--model", "gemma-3-1b", "--prompt", "x"], ["models", "--fetch", "gemma-3-1b"]] {
            let r = try run(arguments)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.err.contains("gemma-3-1b"), r.err)
            XCTAssertTrue(r.err.contains("smollm2-135m, gemma-3-270m"), r.err)
        }
    }

    func testGemmaByNameChatsInItsOwnTemplate() throws {
        try FileManager.default.createSymbolicLink(
            atPath: cache + "/models/gemma-3-270m-q4_k_m.gguf", withDestinationPath: Self.gemmaPath)
        let r = try run(["generate", "--model", "gemma-3-270m", "--chat", "--prompt", "What is the capital of France?",
                         "--max-tokens", "2", "--threads", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        // The Gemma turn text has 16 tokens by llama.cpp's llama-tokenize (sdist build) on this file:
        // [2, 105, 2364, 107, 3689, 563, 506, 5279, 529, 7001, 236881, 106, 107, 105, 4368, 107].
        XCTAssertEqual(try CollmProcess.json(r.out)["prompt_tokens"] as? Int, 16)
        let unknown = try run(["generate", "--model", "gemma-3-270m", "--chat", "--template", "gemma9", "--prompt", "x"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.err.contains("--template NAME") && unknown.err.contains("gemma, llama3"), unknown.err)
    }
}
