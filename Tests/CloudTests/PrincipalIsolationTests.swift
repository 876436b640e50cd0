import CollabCore
import CollabTransport
import Foundation
import XCTest
import TestSupport

@testable import Cloud
@testable import LLM

/// Over real gRPC on loopback: each bearer token is a principal, and a session belongs to the one
/// that opened it. Another principal holding the session id sees an unknown session; a wrong token
/// is refused before any message is handled.
final class PrincipalIsolationTests: XCTestCase {
    func testSessionsAreIsolatedByPrincipal() async throws {
        let p = try CollabFixture.load()
        let principals = Principals(tokens: ["alice-token-1": "alice", "bob-token-22": "bob"])
        let server = try CloudServer(host: "127.0.0.1", port: 0,
                                     service: CloudService(engine: p.engine, principals: principals),
                                     principals: principals)
        let port = AsyncStream<Int> { continuation in
            Task { try await server.run { continuation.yield($0); continuation.finish() } }
        }
        var iterator = port.makeAsyncIterator()
        let bound = await iterator.next()
        let address = "127.0.0.1:\(try XCTUnwrap(bound))"
        defer { server.shutdown() }

        let request = OpenRequest(fingerprint: p.fingerprint, splitLayer: CollabFixture.split, wire: .f16, maxPositions: 32)
        let alice = try await GRPCConnector(address: address, token: "alice-token-1").connect()
        let opened = try await alice.open(request)
        var stolen = request
        stolen.resume = opened.session
        let bob = try await GRPCConnector(address: address, token: "bob-token-22").connect()
        do {
            _ = try await bob.open(stolen)
            XCTFail("bob resumed alice's session")
        } catch let error as CollabError {
            XCTAssertEqual(error.code, .unknownSession)
        }
        // Alice still can, and a wrong token gets nowhere.
        let again = try await GRPCConnector(address: address, token: "alice-token-1").connect()
        let resumed = try await again.open(stolen)
        XCTAssertEqual(resumed.session, opened.session)
        let mallory = try await GRPCConnector(address: address, token: "guess-guess").connect()
        do {
            _ = try await mallory.open(request)
            XCTFail("a wrong token opened a session")
        } catch {
            XCTAssertTrue("\(error)".lowercased().contains("unauthenticated") || "\(error)".contains("bearer"), "\(error)")
        }
        for link in [alice, bob, again, mallory] { await link.close() }
    }

    func testTokensFileParsing() throws {
        let path = NSTemporaryDirectory() + "collm-tokens-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# edges\nalice  alice-token-1\n\nbob\tbob-token-22\n".write(toFile: path, atomically: true, encoding: .utf8)
        let principals = try Principals(file: path)
        XCTAssertEqual(principals.principal(authorization: "Bearer alice-token-1"), "alice")
        XCTAssertEqual(principals.principal(authorization: "Bearer bob-token-22"), "bob")
        XCTAssertNil(principals.principal(authorization: "Bearer alice-token-"))
        XCTAssertNil(principals.principal(authorization: nil))
        for bad in ["alice short", "alice a b c d e f g h", "a same-token-1\nb same-token-1", "# nothing\n",
                    "alice alice-token-1 sessions=0", "alice alice-token-1 memory-mib=x", "alice alice-token-1 cpus=2"] {
            try bad.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try Principals(file: path), bad)
        }
    }

    func testTokensFileQuotasOverrideTheDefaultPerPrincipal() throws {
        let path = NSTemporaryDirectory() + "collm-tokens-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "alice alice-token-1 sessions=4 memory-mib=256\nbob bob-token-22\ncarol carol-token-3 memory-mib=64\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let principals = try Principals(file: path, defaultQuota: PrincipalQuota(maxSessions: 32))
        XCTAssertEqual(principals.quotas["alice"], PrincipalQuota(maxSessions: 4, maxBytes: 256 << 20))
        XCTAssertEqual(principals.quotas["carol"], PrincipalQuota(maxSessions: 32, maxBytes: 64 << 20))
        XCTAssertNil(principals.quotas["bob"], "bob takes the cloud's default quota")
        var limits = CloudLimits()
        limits.principalQuota = PrincipalQuota(maxSessions: 32)
        limits.principalQuotas = principals.quotas
        XCTAssertEqual(limits.quota(of: "bob"), PrincipalQuota(maxSessions: 32))
        XCTAssertEqual(limits.quota(of: "alice").maxSessions, 4)
    }
}
