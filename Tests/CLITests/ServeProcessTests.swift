import Foundation
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `collm serve` as a user's OpenAI client sees it: answers equal to `generate`, streamed events,
/// clear 400s for bad requests, metrics that count what was served.
final class ServeProcessTests: XCTestCase {
    /// A `collm serve` process on a free port.
    final class ServeProcess {
        let process = Process()
        let port: Int
        private let errPipe = Pipe()

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: try CollmProcess.binary())
            process.arguments = ["serve", "--port", "0", "--threads", "1"] + arguments
            process.standardError = errPipe
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            var buffer = ""
            var found: Int?
            let deadline = Date().addingTimeInterval(60)
            while found == nil && Date() < deadline && process.isRunning {
                let chunk = errPipe.fileHandleForReading.availableData
                if chunk.isEmpty { Thread.sleep(forTimeInterval: 0.05); continue }
                buffer += String(decoding: chunk, as: UTF8.self)
                if let range = buffer.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    found = Int(buffer[range].split(separator: ":").last!)
                }
            }
            guard let found else {
                process.terminate()
                XCTFail("serve did not start: \(buffer)")
                throw CocoaError(.executableLoad)
            }
            port = found
        }

        func stop() {
            if process.isRunning { process.interrupt() }
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { process.terminate() }
        }

        deinit { stop() }

        func call(_ path: String, body: String? = nil) async throws -> (status: Int, text: String) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.timeoutInterval = 120
            if let body {
                request.httpMethod = "POST"
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
        }
    }

    private func object(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func testChatCompletionsMatchGenerateAndStream() async throws {
        let server = try ServeProcess(["--mode", "local"])
        defer { server.stop() }
        let question = "What is the capital of France?"
        let r = try await server.call("/v1/chat/completions", body: """
            {"model": "x", "messages": [{"role": "user", "content": "\(question)"}], "max_tokens": 12}
            """)
        XCTAssertEqual(r.status, 200, r.text)
        let reply = try object(r.text)
        let choice = try XCTUnwrap((reply["choices"] as? [[String: Any]])?.first)
        let content = try XCTUnwrap((choice["message"] as? [String: Any])?["content"] as? String)
        let local = try CollmProcess.run(["generate", "--chat", "--prompt", question, "--max-tokens", "12", "--threads", "1", "--json"])
        XCTAssertEqual(content, try CollmProcess.json(local.out)["text"] as? String)
        let usage = try XCTUnwrap(reply["usage"] as? [String: Int])
        XCTAssertEqual(usage["prompt_tokens"], 37)
        XCTAssertEqual(usage["total_tokens"], 37 + usage["completion_tokens", default: -1])
        XCTAssertEqual(((reply["collm"] as? [String: Any])?["sources"] as? [String])?.count, usage["completion_tokens"])

        // Streamed: the pieces concatenate to the same text; the stream ends with [DONE].
        let s = try await server.call("/v1/chat/completions", body: """
            {"messages": [{"role": "user", "content": "\(question)"}], "max_tokens": 12, "stream": true}
            """)
        XCTAssertEqual(s.status, 200)
        let events = s.text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        XCTAssertEqual(events.last, "[DONE]")
        var streamed = ""
        for e in events.dropLast() {
            let delta = (try object(e)["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
            streamed += delta?["content"] as? String ?? ""
        }
        XCTAssertEqual(streamed, content)

        let metrics = try await server.call("/metrics")
        XCTAssertTrue(metrics.text.contains("collm_requests_total 2"), metrics.text)
        let health = try await server.call("/health")
        XCTAssertEqual(health.status, 200)
        let models = try await server.call("/v1/models")
        XCTAssertEqual(models.status, 200)
    }

    func testBadRequestsGetOpenAIStyleErrors() async throws {
        let server = try ServeProcess(["--mode", "edge", "--calibration", "none"])
        defer { server.stop() }
        let cases = [
            ("{not json", "invalid_request_error"),
            (#"{"messages": []}"#, "messages must not be empty"),
            (#"{"max_tokens": 5}"#, "messages"),
            (#"{"messages": [{"role": "wizard", "content": "hi"}]}"#, "unsupported role"),
            (#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}"#, "max_tokens"),
            (#"{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}"#, "temperature"),
            (#"{"messages": [{"role": "user", "content": "\#(String(repeating: "word ", count: 3000))"}]}"#, "context"),
        ]
        for (body, expected) in cases {
            let r = try await server.call("/v1/chat/completions", body: body)
            XCTAssertEqual(r.status, 400, body.prefix(80) + " -> " + r.text)
            XCTAssertTrue(r.text.contains(expected), body.prefix(80) + " -> " + r.text)
        }
        // The server still answers after all of that.
        let ok = try await server.call("/v1/completions", body: #"{"prompt": "Once upon a time", "max_tokens": 4}"#)
        XCTAssertEqual(ok.status, 200, ok.text)
        XCTAssertTrue(((try object(ok.text)["collm"] as? [String: Any])?["sources"] as? [String] ?? []).allSatisfy { $0.hasPrefix("edge:") })
    }
}
