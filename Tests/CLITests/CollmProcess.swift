import Foundation
import TestSupport
import XCTest

/// Runs the built `collm` binary as a separate process, as a user or script would.
enum CollmProcess {
    static var repoRoot: URL { TestResources.repoRoot }

    static func binary() throws -> String {
        let env = ProcessInfo.processInfo.environment
        for candidate in [env["COLLM_BIN"], repoRoot.appendingPathComponent(".build/debug/collm").path].compactMap({ $0 })
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        XCTFail("collm binary not found: build it (swift build) or set COLLM_BIN")
        throw CocoaError(.fileNoSuchFile)
    }

    /// Runs to completion; returns (exit status, stdout, stderr).
    static func run(_ arguments: [String], timeout: Double = 120,
                    environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        // Output goes to files: a full pipe could block the child.
        let dir = FileManager.default.temporaryDirectory
        let outURL = dir.appendingPathComponent("collm-out-\(UUID().uuidString)")
        let errURL = dir.appendingPathComponent("collm-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            process.terminate()
            XCTFail("collm \(arguments.joined(separator: " ")) timed out")
        }
        process.waitUntilExit()
        return (process.terminationStatus, try String(contentsOf: outURL, encoding: .utf8),
                try String(contentsOf: errURL, encoding: .utf8))
    }

    /// Runs `collm bench NAME --quick --output FOLDER ARGS...` into a fresh folder, checks it succeeded,
    /// hands the folder to `check`, then removes it.
    static func quickBench(_ name: String, _ arguments: [String] = [], timeout: Double, check: (URL) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("collm-\(name)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let r = try run(["bench", name, "--quick", "--output", folder.path] + arguments, timeout: timeout)
        XCTAssertEqual(r.status, 0, r.err)
        try check(folder)
    }

    /// The default model file (as scripts/test.sh installs it).
    static var modelPath: String {
        (try? TestResources.modelPath()) ?? repoRoot.appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }

    static func json(_ text: String) throws -> [String: Any] {
        let line = text.split(separator: "\n").last.map(String.init) ?? ""
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(text)")
    }
}

/// A `collm cloud` server process on a free loopback port, stopped when released.
final class CloudProcess {
    let process = Process()
    let port: Int
    private let errPipe = Pipe()

    init(port requested: Int = 0, extra: [String] = [], failQuietly: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: try CollmProcess.binary())
        process.arguments = ["cloud", "--port", "\(requested)", "--threads", "1"] + extra
        process.standardError = errPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The server prints "listening on HOST:PORT" once bound.
        var buffer = ""
        let deadline = Date().addingTimeInterval(60)
        var found: Int?
        while found == nil && Date() < deadline && process.isRunning {
            let chunk = errPipe.fileHandleForReading.availableData
            if chunk.isEmpty { Thread.sleep(forTimeInterval: 0.05); continue }
            buffer += String(decoding: chunk, as: UTF8.self)
            if let range = buffer.range(of: #"listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(buffer[range].split(separator: ":").last!)
            }
        }
        guard let found else {
            process.terminate()
            if !failQuietly { XCTFail("cloud did not start: \(buffer)") }
            throw CocoaError(.executableLoad)
        }
        port = found
    }

    var address: String { "127.0.0.1:\(port)" }

    /// A server on the port a killed one held; retried for a few seconds in case the port is briefly taken.
    static func restarting(onPort port: Int) throws -> CloudProcess {
        let deadline = Date().addingTimeInterval(15)
        while true {
            if let cloud = try? CloudProcess(port: port, failQuietly: true) { return cloud }
            if Date() > deadline { return try CloudProcess(port: port) }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    /// Kills the server abruptly (no graceful shutdown), as a crash would.
    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.interrupt()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { process.terminate() }
        }
    }

    deinit { stop() }
}
