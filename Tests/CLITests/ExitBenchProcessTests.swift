import Foundation
import XCTest

/// `collm bench exits` with the shipped calibration: the synthetic-state timings and the real-decoding
/// measurement, whose token outcomes must account for every answer token.
final class ExitBenchProcessTests: XCTestCase {
    func testRealDecodingAccountsForEveryAnswerToken() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("collm-exb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let r = try CollmProcess.run(["bench", "exits", "--model", CollmProcess.modelPath, "--iterations", "5",
                                      "--prompts", "2", "--decode-tokens", "12", "--threads", "1", "--json"],
                                     timeout: 600, environment: ["COLLM_CACHE": cache])
        XCTAssertEqual(r.status, 0, r.err)
        let json = try CollmProcess.json(r.out)
        XCTAssertTrue((json["calibration"] as? String ?? "").hasSuffix("-s20.safetensors"), "\(json["calibration"] ?? "")")
        XCTAssertEqual(json["shortlist_rows"] as? String, "q8_0", "the head's own rows")
        let exit = try XCTUnwrap((json["exits"] as? [[String: Any]])?.first)
        let decoding = try XCTUnwrap(exit["decoding"] as? [String: Double])
        XCTAssertEqual(decoding["prompts"], 2)
        let tokens = try XCTUnwrap(decoding["tokens"])
        XCTAssertTrue((2...24).contains(tokens), "\(tokens) answer tokens for 2 prompts of at most 12")
        let shares = ["screened_share", "full_head_rejected_share", "confident_share"].compactMap { decoding[$0] }
        XCTAssertEqual(shares.count, 3)
        XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-9)
        // Each share is a whole number of tokens.
        for share in shares { XCTAssertEqual((share * tokens).rounded(), share * tokens, accuracy: 1e-6) }
        XCTAssertGreaterThan(decoding["screened_share"]!, 0, "the shortlist screen rejects most unconfident tokens")
        XCTAssertGreaterThan(decoding["layer_ms"]!, 0)
        XCTAssertGreaterThan(decoding["layers_per_token"]!, 0)
        // The weights a check reads, from the formats' block sizes: two layers packed as Q5_0 (22 bytes per 32
        // weights) and the 5,162 shortlisted head rows in the head's Q8_0 (34 bytes per 32; packed in panels of
        // 8 rows, so 5,168), against one edge layer in Q4_1 (20 bytes per 32). A layer of this model: Q, K, V,
        // O, gate, up and down.
        let (width, ffn, kvWidth) = (576, 1536, 3 * 64)
        let weightsPerLayer = width * (width + 2 * kvWidth) + width * width + 3 * width * ffn
        let shortlistRows = (5_162 + 7) / 8 * 8
        let expectedBytes = 2 * weightsPerLayer / 32 * 22 + shortlistRows * width / 32 * 34
        XCTAssertEqual(exit["check_weight_bytes"] as? Int, expectedBytes)
        XCTAssertEqual(try XCTUnwrap(exit["check_weight_layers"] as? Double),
                       Double(expectedBytes) / Double(weightsPerLayer / 32 * 20), accuracy: 1e-9)

        let bad = try CollmProcess.run(["bench", "exits", "--model", CollmProcess.modelPath, "--decode-tokens", "0"],
                                       environment: ["COLLM_CACHE": cache])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--decode-tokens >= 1"), bad.err)
    }
}
