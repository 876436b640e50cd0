import Foundation
import XCTest

@testable import LLM

/// A fetcher that writes fixed bytes instead of downloading, and counts its calls.
private final class StubFetcher: ModelFetcher, @unchecked Sendable {
    private let lock = NSLock()
    private var _calls = 0
    let content: Data
    let error: ModelStoreError?

    init(content: Data, error: ModelStoreError? = nil) {
        self.content = content
        self.error = error
    }

    var calls: Int { lock.withLock { _calls } }

    func fetch(_ spec: ModelSpec, workDirectory: String, progress: (String) -> Void) throws -> String {
        lock.withLock { _calls += 1 }
        if let error { throw error }
        let path = (workDirectory as NSString).appendingPathComponent(spec.fileName)
        try content.write(to: URL(fileURLWithPath: path))
        return path
    }
}

final class ModelStoreTests: XCTestCase {
    private var tempDirectory = ""

    /// A tiny stand-in model: the bytes "abc" (SHA-256 from FIPS 180-2's first example).
    private let tinyContent = Data("abc".utf8)
    private let tinySpec = ModelSpec(
        fileName: "tiny.gguf", size: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        pipPackage: "not-a-package", pipVersion: "0.0.0", wheelMember: "x/tiny.gguf")

    override func setUpWithError() throws {
        tempDirectory = (NSTemporaryDirectory() as NSString).appendingPathComponent("collm-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: tempDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tempDirectory)
    }

    private func write(_ data: Data, _ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    private func store(_ fetcher: StubFetcher) -> ModelStore {
        ModelStore(cacheDirectory: tempDirectory, spec: tinySpec, fetcher: fetcher)
    }

    // MARK: digests

    func testDigestOfKnownFiles() throws {
        let path = (tempDirectory as NSString).appendingPathComponent("f")
        try write(Data(), path)
        XCTAssertEqual(
            try FileDigest.sha256Hex(ofFileAt: path),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        try write(Data("abc".utf8), path)
        XCTAssertEqual(
            try FileDigest.sha256Hex(ofFileAt: path),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // One million 'a' (FIPS 180-2), hashed in several chunk sizes so chunk boundaries are crossed.
        try write(Data(repeating: UInt8(ascii: "a"), count: 1_000_000), path)
        for chunk in [FileDigest.defaultChunkSize, 4096, 999] {
            XCTAssertEqual(
                try FileDigest.sha256Hex(ofFileAt: path, chunkSize: chunk),
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "chunk \(chunk)")
        }
        XCTAssertEqual(FileDigest.sha256Hex(of: Data("abc".utf8)), tinySpec.sha256)
        XCTAssertEqual(FileDigest.fileSize(atPath: path), 1_000_000)
        XCTAssertNil(FileDigest.fileSize(atPath: path + ".missing"))
    }

    func testDigestOfMissingFileThrows() {
        XCTAssertThrowsError(try FileDigest.sha256Hex(ofFileAt: tempDirectory + "/nope")) { error in
            XCTAssertTrue("\(error)".contains("nope"))
        }
    }

    // MARK: defaults

    func testDefaultsDescribeSmolLM2() {
        XCTAssertEqual(ModelStore.defaultModelFileName, "SmolLM2-135M-Instruct.Q4_1.gguf")
        XCTAssertEqual(ModelSpec.smolLM2.size, 98_362_432)
        XCTAssertEqual(ModelSpec.smolLM2.sha256, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
        XCTAssertEqual(ModelSpec.smolLM2.humanSize, "98 MB")
        let s = ModelStore(cacheDirectory: "/x/cache")
        XCTAssertEqual(s.modelPath, "/x/cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    func testCacheDirectoryFromEnvironment() {
        XCTAssertEqual(ModelStore.defaultCacheDirectory(environment: ["COLLM_CACHE": "/c", "HOME": "/h"]), "/c")
        XCTAssertEqual(ModelStore.defaultCacheDirectory(environment: ["COLLM_CACHE": "", "HOME": "/h"]), "/h/.cache/collm")
        XCTAssertEqual(ModelStore.defaultCacheDirectory(environment: ["HOME": "/home/u"]), "/home/u/.cache/collm")
    }

    // MARK: cache states

    func testMissingModelIsFetchedVerifiedAndMarked() throws {
        let fetcher = StubFetcher(content: tinyContent)
        let s = store(fetcher)
        var messages: [String] = []
        let path = try s.resolveModel { messages.append($0) }
        XCTAssertEqual(path, s.modelPath)
        XCTAssertEqual(fetcher.calls, 1)
        XCTAssertEqual(FileManager.default.contents(atPath: path), tinyContent)
        XCTAssertEqual(
            String(decoding: FileManager.default.contents(atPath: s.verifiedMarkerPath) ?? Data(), as: UTF8.self),
            tinySpec.sha256 + "\n")
        XCTAssertTrue(messages.contains { $0.contains("fetching model tiny.gguf") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("verifying sha256") }, "\(messages)")
        // No fetch leftovers in the models directory.
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: s.modelsDirectory).sorted(),
            ["tiny.gguf", "tiny.gguf.verified"])

        // Second run: instant (marker), no fetch, no hashing.
        messages.removeAll()
        XCTAssertEqual(try s.resolveModel { messages.append($0) }, path)
        XCTAssertEqual(fetcher.calls, 1)
        XCTAssertEqual(messages, [])
        XCTAssertEqual(s.verifiedCachedModel(), path)
    }

    func testWrongSizeCacheIsDetectedDeletedAndRefetched() throws {
        let fetcher = StubFetcher(content: tinyContent)
        let s = store(fetcher)
        try write(Data("garbage of the wrong size".utf8), s.modelPath)
        XCTAssertNil(s.verifiedCachedModel())
        var messages: [String] = []
        let path = try s.resolveModel { messages.append($0) }
        XCTAssertEqual(fetcher.calls, 1)
        XCTAssertEqual(FileManager.default.contents(atPath: path), tinyContent)
        XCTAssertTrue(messages.contains { $0.contains("corrupt") && $0.contains("25 bytes") }, "\(messages)")
    }

    func testRightSizeWrongContentIsDetectedByDigest() throws {
        let fetcher = StubFetcher(content: tinyContent)
        let s = store(fetcher)
        try write(Data("abd".utf8), s.modelPath)
        var messages: [String] = []
        _ = try s.resolveModel { messages.append($0) }
        XCTAssertEqual(fetcher.calls, 1)
        XCTAssertTrue(messages.contains { $0.contains("corrupt") && $0.contains("sha256") }, "\(messages)")
        XCTAssertEqual(FileManager.default.contents(atPath: s.modelPath), tinyContent)
    }

    func testValidCacheWithoutMarkerIsVerifiedOnceWithoutFetching() throws {
        let fetcher = StubFetcher(content: Data("xyz".utf8))
        let s = store(fetcher)
        try write(tinyContent, s.modelPath)
        var messages: [String] = []
        XCTAssertEqual(try s.resolveModel { messages.append($0) }, s.modelPath)
        XCTAssertEqual(fetcher.calls, 0)
        XCTAssertEqual(messages.count, 1)
        XCTAssertTrue(messages[0].contains("verifying sha256"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.verifiedMarkerPath))
    }

    func testStaleMarkerDoesNotHideCorruption() throws {
        let fetcher = StubFetcher(content: tinyContent)
        let s = store(fetcher)
        try write(Data("abd".utf8), s.modelPath)
        // A marker with the wrong digest is ignored.
        try write(Data("0000\n".utf8), s.verifiedMarkerPath)
        _ = try s.resolveModel { _ in }
        XCTAssertEqual(fetcher.calls, 1)
        // A valid marker older than a replaced model file is ignored too.
        Thread.sleep(forTimeInterval: 0.02)
        try write(Data("abd".utf8), s.modelPath)
        _ = try s.resolveModel { _ in }
        XCTAssertEqual(fetcher.calls, 2)
        XCTAssertEqual(FileManager.default.contents(atPath: s.modelPath), tinyContent)
    }

    func testFetchedFileWithWrongDigestIsRejected() throws {
        let fetcher = StubFetcher(content: Data("abd".utf8))
        let s = store(fetcher)
        XCTAssertThrowsError(try s.resolveModel { _ in }) { error in
            guard case ModelStoreError.digestMismatch(_, let expected, let actual)? = error as? ModelStoreError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(expected, self.tinySpec.sha256)
            XCTAssertNotEqual(actual, expected)
            XCTAssertTrue("\(error)".contains("sha256"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.modelPath))
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.verifiedMarkerPath))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: s.modelsDirectory), [])
    }

    func testFetchedFileWithWrongSizeIsRejected() throws {
        let s = store(StubFetcher(content: Data("abcd".utf8)))
        XCTAssertThrowsError(try s.resolveModel { _ in }) { error in
            guard case ModelStoreError.sizeMismatch(_, 3, 4)? = error as? ModelStoreError else {
                return XCTFail("unexpected \(error)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.modelPath))
    }

    func testFetchErrorsPropagateWithClearMessages() throws {
        let failure = ModelStoreError.downloadFailed(exitCode: 1, stderrTail: "ERROR: Could not find a version")
        let s = store(StubFetcher(content: Data(), error: failure))
        XCTAssertThrowsError(try s.resolveModel { _ in }) { error in
            XCTAssertEqual(error as? ModelStoreError, failure)
            XCTAssertTrue("\(error)".contains("Could not find a version"))
            XCTAssertTrue("\(error)".contains("network"))
        }
        XCTAssertTrue(ModelStoreError.pythonNotFound.description.contains("python3"))
        XCTAssertTrue(ModelStoreError.pipNotAvailable(detail: "No module named pip").description.contains("pip"))
    }

    func testPipFetcherReportsMissingPython() throws {
        let fetcher = PipModelFetcher(python: "collm-no-such-python-\(UUID().uuidString.prefix(8))")
        let work = (tempDirectory as NSString).appendingPathComponent("work")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        XCTAssertThrowsError(try fetcher.fetch(tinySpec, workDirectory: work) { _ in }) { error in
            XCTAssertEqual(error as? ModelStoreError, .pythonNotFound)
        }
    }

    func testStderrTail() {
        let text = (1...30).map { "line \($0)" }.joined(separator: "\n")
        let tail = PipModelFetcher.tail(text, lines: 3)
        XCTAssertEqual(tail, "line 28\nline 29\nline 30")
    }
}
