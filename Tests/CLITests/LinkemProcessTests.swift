import Foundation
import XCTest

/// `collm linkem` as a process: clear argument errors, and SIGUSR1/SIGUSR2 cut and restore.
final class LinkemProcessTests: XCTestCase {
    func testBadArgumentsAreClearErrors() throws {
        let base = ["linkem", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9"]
        let cases: [([String], String)] = [
            (["linkem", "--listen", "127.0.0.1", "--target", "127.0.0.1:9", "--delay-ms", "1", "--rate-mbit", "1"], "not HOST:PORT"),
            (base + ["--delay-ms", "1"], "--rate-mbit"),
            (base + ["--rate-mbit", "1"], "--delay-ms"),
            (base + ["--delay-ms=-5", "--rate-mbit", "1"], "--delay-ms must be >= 0"),
            (base + ["--delay-ms", "1", "--rate-mbit", "fast"], "fast"),
            (base + ["--delay-ms", "1", "--rate-mbit", "1", "--jitter-ms=-1"], "--jitter-ms"),
            (base + ["--delay-ms", "1", "--rate-mbit", "1", "--control", "0.0.0.0:7000"], "loopback"),
            (["linkem", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:0", "--delay-ms", "1", "--rate-mbit", "1"], "valid port"),
        ]
        for (args, expected) in cases {
            let r = try CollmProcess.run(args, timeout: 30)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.err.contains(expected), "\(args): \(r.err)")
        }
        let help = try CollmProcess.run(["linkem", "--help"], timeout: 30)
        XCTAssertTrue(help.out.contains("SIGUSR1") && help.out.contains("--rate-mbit"), help.out)
    }

    /// SIGUSR1 refuses connections, SIGUSR2 accepts them again, SIGTERM stops the proxy.
    func testSignalsCutAndRestore() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CollmProcess.binary())
        // The target need not exist: a connection is accepted (then closed when dialling fails).
        process.arguments = ["linkem", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9", "--delay-ms", "1", "--rate-mbit", "10"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var log = ""
        func waitFor(_ pattern: String) throws -> String {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let range = log.range(of: pattern, options: .regularExpression) { return String(log[range]) }
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { Thread.sleep(forTimeInterval: 0.02) } else { log += String(decoding: chunk, as: UTF8.self) }
            }
            XCTFail("no '\(pattern)' in: \(log)")
            throw CocoaError(.fileReadUnknown)
        }
        let port = Int(try waitFor(#"listening on 127\.0\.0\.1:\d+"#).split(separator: ":").last!)!
        XCTAssertTrue(canConnect(port))
        kill(process.processIdentifier, SIGUSR1)
        _ = try waitFor("link cut")
        XCTAssertFalse(canConnect(port))
        kill(process.processIdentifier, SIGUSR2)
        _ = try waitFor("link restored")
        XCTAssertTrue(canConnect(port))
        process.terminate()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }

    private func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
