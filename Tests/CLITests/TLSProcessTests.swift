import Foundation
import XCTest

/// The cloud over TLS: an edge that trusts the server's certificate collaborates; one that speaks
/// plaintext or trusts another certificate is misconfigured and stops with an error naming TLS (it
/// does not degrade in silence as if the cloud were down).
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
        func collab(_ extra: [String]) throws -> (status: Int32, out: String, err: String) {
            try CollmProcess.run(["generate", "--chat", "--prompt", "What is the capital of France?", "--mode", "collab",
                                  "--cloud", cloud.address, "--calibration", "none", "--max-tokens", "4",
                                  "--threads", "1", "--json"] + extra)
        }
        let trusted = try collab(["--tls-ca", server.cert])
        XCTAssertEqual(trusted.status, 0, trusted.err)
        XCTAssertEqual(try CollmProcess.json(trusted.out)["sources"] as? [String], Array(repeating: "cloud", count: 4))
        for (extra, what) in [([], "plaintext client against a TLS cloud"), (["--tls-ca", other.cert], "untrusted certificate")] {
            let r = try collab(extra)
            XCTAssertNotEqual(r.status, 0, "\(what): \(r.out)")
            XCTAssertTrue(r.err.contains("TLS") && r.err.contains("--tls-ca"), "\(what): \(r.err)")
        }
        let bad = try CollmProcess.run(["cloud", "--port", "0", "--tls-cert", server.cert], timeout: 60)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--tls-key"), bad.err)
    }
}
