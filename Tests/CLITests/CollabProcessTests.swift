import Foundation
import XCTest

/// Edge and cloud as separate processes over real gRPC on loopback (issue: collaboration).
final class CollabProcessTests: XCTestCase {
    private let prompts = ["What is the capital of France?", "Name three primary colors.", "Write a haiku about the sea."]

    private func generate(_ mode: String, _ prompt: String, _ extra: [String] = []) throws -> [String: Any] {
        let r = try CollmProcess.run(["generate", "--chat", "--prompt", prompt, "--mode", mode, "--max-tokens", "16",
                                      "--threads", "1", "--json"] + extra)
        XCTAssertEqual(r.status, 0, r.err)
        return try CollmProcess.json(r.out)
    }

    func testEveryModeAgainstACloudProcess() throws {
        let cloud = try CloudProcess()
        defer { cloud.stop() }
        for prompt in prompts {
            let local = try generate("local", prompt)
            let tokens = try XCTUnwrap(local["tokens"] as? [Int])
            // Exits that can never fire + f32 transfer: identical to the full model.
            let collab = try generate("collab", prompt, ["--cloud", cloud.address, "--wire", "f32", "--exits", "8", "--threshold", "1.5"])
            XCTAssertEqual(collab["tokens"] as? [Int], tokens, prompt)
            let sources = try XCTUnwrap(collab["sources"] as? [String])
            XCTAssertEqual(sources, Array(repeating: "cloud", count: tokens.count))
            // One boundary state (576 f32 = 2304 bytes) per position crosses the network, plus framing.
            let promptTokens = try XCTUnwrap(collab["prompt_tokens"] as? Int)
            let stoppedAtEOS = (collab["stop_reason"] as? String) == "eos"
            let positions = promptTokens + tokens.count - (stoppedAtEOS ? 0 : 1)
            let up = try XCTUnwrap(collab["bytes_up"] as? Int)
            XCTAssertGreaterThanOrEqual(up, positions * 2304)
            XCTAssertLessThan(Double(up), Double(positions * 2304) * 1.05, "framing overhead over 5%")
            XCTAssertEqual(collab["round_trips"] as? Int, 1 + tokens.count + (stoppedAtEOS ? 1 : 0))
            // The cloud-only baseline runs the same full model remotely.
            let remote = try generate("cloud", prompt, ["--cloud", cloud.address])
            XCTAssertEqual(remote["tokens"] as? [Int], tokens, prompt)
            XCTAssertEqual(remote["round_trips"] as? Int, 1)
            // The naive split re-sends the whole context every step: O(context) bytes per token.
            let naive = try generate("naive", prompt, ["--cloud", cloud.address, "--wire", "f32"])
            XCTAssertEqual(naive["tokens"] as? [Int], tokens, prompt)
            let steps = tokens.count + (stoppedAtEOS ? 1 : 0)
            let resent = (0..<steps).reduce(0) { $0 + (promptTokens + $1) * 2304 }
            let naiveUp = try XCTUnwrap(naive["bytes_up"] as? Int)
            XCTAssertGreaterThanOrEqual(naiveUp, resent)
            XCTAssertLessThan(Double(naiveUp), Double(resent) * 1.05)
            XCTAssertGreaterThan(naiveUp, 5 * up)
            // Lossless speculation: eager drafts from the split exit, verified by the cloud, give the same tokens.
            let spec = try generate("spec", prompt, ["--cloud", cloud.address, "--wire", "f32", "--threshold", "0.3"])
            XCTAssertEqual(spec["tokens"] as? [Int], tokens, prompt)
            let speculation = try XCTUnwrap(spec["speculation"] as? [String: Int])
            XCTAssertEqual(spec["round_trips"] as? Int, 1 + speculation["rounds", default: -1])
        }
        let edge = try generate("edge", prompts[0], ["--split", "15", "--calibration", "none"])
        XCTAssertEqual(edge["bytes_up"] as? Int, 0)
        XCTAssertTrue((edge["sources"] as? [String] ?? []).allSatisfy { $0 == "edge:15" })
    }

    /// f16 transfer over real gRPC reproduces the full model when edge, cloud and reference all use
    /// f32 activations (with int8 activations f16 rounding flips near-ties; see CollabExactnessTests).
    func testF16WireWithF32ActivationsEqualsLocal() throws {
        let cloud = try CloudProcess(extra: ["--activations", "f32"])
        defer { cloud.stop() }
        for prompt in prompts {
            let local = try generate("local", prompt, ["--activations", "f32"])
            let collab = try generate("collab", prompt, ["--cloud", cloud.address, "--wire", "f16", "--activations", "f32",
                                                         "--exits", "8", "--threshold", "1.5"])
            XCTAssertEqual(collab["tokens"] as? [Int], local["tokens"] as? [Int], prompt)
        }
    }

    func testCollabCompletesDegradedWithoutACloud() throws {
        // Nothing listens on this port: every token is answered by the edge and marked degraded.
        let r = try generate("collab", prompts[0], ["--cloud", "127.0.0.1:9", "--max-tokens", "6", "--calibration", "none"])
        let sources = try XCTUnwrap(r["sources"] as? [String])
        XCTAssertEqual(sources.count, (r["tokens"] as? [Int])?.count)
        XCTAssertFalse(sources.isEmpty)
        XCTAssertTrue(sources.allSatisfy { $0 == "edge:20:degraded" }, "\(sources)")
    }

    /// Without --cloud, collab runs against a cloud embedded in the process (loopback gRPC, f32 states): with
    /// the shipped exits the edge decides some tokens, and the answer equals a run against a `collm cloud`
    /// process with the same wire.
    func testEmbeddedCloudCollabEqualsACloudProcess() throws {
        let cloud = try CloudProcess()
        defer { cloud.stop() }
        let prompt = "Give three tips for staying healthy."
        let embedded = try generate("collab", prompt, ["--max-tokens", "32"])
        XCTAssertEqual(embedded["cloud"] as? String, "embedded")
        let remote = try generate("collab", prompt, ["--max-tokens", "32", "--cloud", cloud.address, "--wire", "f32"])
        XCTAssertEqual(embedded["tokens"] as? [Int], remote["tokens"] as? [Int])
        let sources = try XCTUnwrap(embedded["sources"] as? [String])
        XCTAssertEqual(sources, remote["sources"] as? [String])
        XCTAssertTrue(sources.contains { $0.hasPrefix("edge:") }, "the shipped exits decided nothing: \(sources)")
        XCTAssertTrue(sources.contains("cloud"), "\(sources)")
        XCTAssertNotNil(embedded["calibration"] as? String, "no calibration was used")
        // f32 states: the near-tie that an f16 wire flips ("L'Étoile...") stays the full model's answer.
        let france = try generate("collab", "What is the capital of France?")
        XCTAssertTrue((france["text"] as? String ?? "").contains("Paris"), "\(france["text"] ?? "")")
    }

    func testBadArgumentsAreClearErrors() throws {
        let cases: [([String], String)] = [
            (["generate", "--prompt", "x", "--mode", "teleport"], "teleport"),
            (["generate", "--prompt", "x", "--wire", "f8"], "--wire"),
            (["generate", "--prompt", "x", "--threads", "0"], "--threads"),
            (["generate", "--prompt", "x", "--model", "/nonexistent.gguf"], "nonexistent"),
            (["tokenize"], "exactly one of --text or --file"),
            (["perplexity", "--file", "/nonexistent.txt"], "cannot read"),
            (["cloud", "--host", "0.0.0.0", "--port", "0"], "token"),
            (["generate", "--prompt", "x", "--calibration", "/nonexistent.safetensors"], "calibration file not found"),
            (["generate", "--prompt", "x", "--mode", "spec", "--cloud", "127.0.0.1:9", "--repeat-penalty", "1.2"], "--repeat-penalty 1"),
            (["generate", "--prompt", "x", "--latency-aware", "0.9,0.5"], "--latency-aware"),
            (["calibrate", "--block", "lstm"], "--block"),
            (["calibrate", "--split", "15", "--exits", "20"], "above the split"),
            (["calibrate", "--exits", "8,15", "--block", "12:layer"], "not among the exits"),
            (["calibrate", "--block", "15:lstm"], "--block"),
            (["calibrate", "--block", "layer", "--layer-source", "99"], "--layer-source"),
        ]
        for (args, expected) in cases {
            let r = try CollmProcess.run(args, timeout: 60)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.err.contains(expected), "\(args): \(r.err)")
            XCTAssertFalse(r.err.contains("Fatal error"), r.err)
        }
    }
}

extension CollabProcessTests {
    /// Kill the cloud process during a collab generation, then restart it: the generation completes,
    /// tokens decided while it was down are marked degraded, and after the restart the edge reopens a
    /// session, replays its log and uses the cloud again.
    func testCloudKilledAndRestartedDuringGeneration() throws {
        // Let the kernel pick a free port (a random one can collide with an ephemeral port in use), then
        // restart on that same port.
        var cloud = try CloudProcess()
        let port = cloud.port
        let edge = Process()
        edge.executableURL = URL(fileURLWithPath: try CollmProcess.binary())
        edge.arguments = ["generate", "--prompt", "Once upon a time, in a small village by the sea,", "--mode", "collab",
                          "--calibration", "none", "--cloud", "127.0.0.1:\(port)", "--max-tokens", "1500", "--threads", "1", "--json"]
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("collm-kill-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL) }
        edge.standardOutput = try FileHandle(forWritingTo: outURL)
        edge.standardError = FileHandle.nullDevice
        try edge.run()
        Thread.sleep(forTimeInterval: 6.0)  // model load, fingerprint, prefill and some cloud tokens
        XCTAssertTrue(edge.isRunning, "generation finished before the cloud was killed; make it longer")
        cloud.kill()
        Thread.sleep(forTimeInterval: 1.0)
        cloud = try CloudProcess.restarting(onPort: port)
        defer { cloud.stop() }
        let deadline = Date().addingTimeInterval(300)
        while edge.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(edge.isRunning)
        edge.waitUntilExit()
        XCTAssertEqual(edge.terminationStatus, 0)
        let json = try CollmProcess.json(try String(contentsOf: outURL, encoding: .utf8))
        let sources = try XCTUnwrap(json["sources"] as? [String])
        let firstDegraded = try XCTUnwrap(sources.firstIndex(of: "edge:20:degraded"), "never degraded: \(sources.count) tokens")
        XCTAssertGreaterThan(firstDegraded, 0)
        XCTAssertTrue(sources[..<firstDegraded].allSatisfy { $0 == "cloud" })
        XCTAssertTrue(sources[firstDegraded...].contains("cloud"), "the cloud was never used again after the restart")
        XCTAssertEqual(sources.last, "cloud")
    }
}

extension CollabProcessTests {
    /// Eight edge processes at once against one cloud: each gets exactly its single-client output.
    func testEightConcurrentEdgesMatchTheirSingleClientRuns() throws {
        let cloud = try CloudProcess()
        defer { cloud.stop() }
        let questions = ["What is 2 plus 2?", "Name a fruit.", "What color is the sky?", "Say hello in French.",
                         "What is the largest planet?", "Name a mammal.", "What is water made of?", "Who painted the Mona Lisa?"]
        let args = { (q: String) in ["generate", "--chat", "--prompt", q, "--mode", "collab", "--cloud", cloud.address,
                                     "--calibration", "none", "--wire", "f32", "--max-tokens", "8", "--threads", "1", "--json"] }
        var alone: [[Int]] = []
        for q in questions {
            let r = try CollmProcess.run(args(q))
            XCTAssertEqual(r.status, 0, r.err)
            alone.append(try XCTUnwrap(try CollmProcess.json(r.out)["tokens"] as? [Int]))
        }
        // Start all eight processes, then collect them.
        var running: [(Process, URL)] = []
        for q in questions {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try CollmProcess.binary())
            process.arguments = args(q)
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("collm-par-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = FileHandle.nullDevice
            try process.run()
            running.append((process, out))
        }
        var together: [Int: [Int]] = [:]
        let deadline = Date().addingTimeInterval(300)
        for (i, (process, out)) in running.enumerated() {
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, questions[i])
            together[i] = try CollmProcess.json(try String(contentsOf: out, encoding: .utf8))["tokens"] as? [Int]
            try? FileManager.default.removeItem(at: out)
        }
        for i in questions.indices {
            XCTAssertEqual(together[i], alone[i], questions[i])
        }
    }
}
