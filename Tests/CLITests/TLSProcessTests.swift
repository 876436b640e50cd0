import Foundation
import XCTest

/// The cloud over TLS: an edge that trusts the server's certificate collaborates; one that speaks
/// plaintext or trusts another certificate cannot reach it and degrades instead of failing.
final class TLSProcessTests: XCTestCase {
    private func makeCertificate(in dir: String, name: String) throws -> (cert: String, key: String) {
        let (cert, key) = ("\(dir)/\(name)-cert.pem", "\(dir)/\(name)-key.pem")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardError = FileHandle.nullDevice
        openssl.standardOutput = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        XCTAssertEqual(openssl.terminationStatus, 0, "openssl req failed")
        return (cert, key)
    }

    func testCollabOverTLSNeedsTheRightTrustRoots() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else {
            throw XCTSkip("openssl is needed to make a test certificate")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("collm-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try makeCertificate(in: dir, name: "server")
        let other = try makeCertificate(in: dir, name: "other")
        let cloud = try CloudProcess(extra: ["--tls-cert", server.cert, "--tls-key", server.key])
        defer { cloud.stop() }
        func collab(_ extra: [String]) throws -> [String] {
            let r = try CollmProcess.run(["generate", "--chat", "--prompt", "What is the capital of France?", "--mode", "collab",
                                          "--cloud", cloud.address, "--calibration", "none", "--max-tokens", "4",
                                          "--threads", "1", "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.err)
            return try XCTUnwrap(try CollmProcess.json(r.out)["sources"] as? [String])
        }
        XCTAssertEqual(try collab(["--tls-ca", server.cert]), Array(repeating: "cloud", count: 4))
        XCTAssertTrue(try collab([]).allSatisfy { $0 == "edge:15:degraded" }, "plaintext client against a TLS cloud")
        XCTAssertTrue(try collab(["--tls-ca", other.cert]).allSatisfy { $0 == "edge:15:degraded" }, "untrusted certificate")
        let bad = try CollmProcess.run(["cloud", "--port", "0", "--tls-cert", server.cert], timeout: 60)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--tls-key"), bad.err)
    }
}
