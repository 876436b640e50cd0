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
        /// What the server printed on stderr up to "listening".
        let startupLog: String
        private let errPipe = Pipe()

        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            process.executableURL = URL(fileURLWithPath: try CollmProcess.binary())
            process.arguments = ["serve", "--port", "0", "--threads", "1"] + arguments
            if !environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            }
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
                if let range = buffer.range(of: #"listening on http://[0-9.]+:(\d+)"#, options: .regularExpression) {
                    found = Int(buffer[range].split(separator: ":").last!)
                }
            }
            guard let found else {
                process.terminate()
                XCTFail("serve did not start: \(buffer)")
                throw CocoaError(.executableLoad)
            }
            port = found
            startupLog = buffer
        }

        func stop() {
            if process.isRunning { process.interrupt() }
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { process.terminate() }
        }

        deinit { stop() }

        func call(_ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> (status: Int, text: String) {
            let r = try await exchange(path, body: body, headers: headers)
            return (r.status, r.text)
        }

        /// As `call`, with the response's headers.
        func exchange(_ path: String, body: String? = nil,
                      headers: [String: String] = [:]) async throws -> (status: Int, text: String, headers: [String: String]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            request.timeoutInterval = 120
            if let body {
                request.httpMethod = "POST"
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as? HTTPURLResponse
            let fields = (http?.allHeaderFields ?? [:]).reduce(into: [String: String]()) {
                $0[String(describing: $1.key).lowercased()] = String(describing: $1.value)
            }
            return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), fields)
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

/// `serve` under abuse: clients that leave, more requests than it can hold, no API key, and the
/// corners of OpenAI's API (usage chunks, n, content types, null content, max_tokens past the context).
extension ServeProcessTests {
    private static let longRequest = #"{"prompt": "Once upon a time, in a small village by the sea,", "max_tokens": 1500}"#

    /// Seconds from now until a small request is answered. A 503 `queue_full` is retried every 0.1 s
    /// for up to 10 s: a client's departure reaches the server a moment after its socket closes, and
    /// on a loaded machine a request sent at once may still find the departed one's place taken.
    private func timeOfNextRequest(_ server: ServeProcess) async throws -> Double {
        let start = Date()
        while true {
            let r = try await server.call("/v1/completions", body: #"{"prompt": "Hello", "max_tokens": 4}"#)
            if r.status == 503, r.text.contains("queue_full"), Date().timeIntervalSince(start) < 10 {
                try await Task.sleep(nanoseconds: 100_000_000)
                continue
            }
            XCTAssertEqual(r.status, 200, r.text)
            return Date().timeIntervalSince(start)
        }
    }

    private func metric(_ server: ServeProcess, _ name: String) async throws -> Double? {
        let text = try await server.call("/metrics").text
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    func testAClientThatLeavesStopsItsGeneration() async throws {
        // The full model (TextGenerator) and the edge runner (EdgeRunner, as collab runs it).
        for mode in ["local", "edge"] {
            try await checkAClientThatLeavesStopsItsGeneration(["--mode", mode, "--calibration", "none"])
        }
    }

    private func checkAClientThatLeavesStopsItsGeneration(_ arguments: [String]) async throws {
        let server = try ServeProcess(arguments)
        defer { server.stop() }
        // Not streamed: the client leaves while the 1,500-token answer is being generated (about 30 s).
        let plain = try RawHTTPConnection(port: server.port)
        plain.post("/v1/completions", json: Self.longRequest)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        plain.close()
        let afterPlain = try await timeOfNextRequest(server)
        XCTAssertLessThan(afterPlain, 3, "the next request waited for the abandoned generation")
        // Streamed: the client reads the first events, then leaves.
        let streamed = try RawHTTPConnection(port: server.port)
        streamed.post("/v1/completions", json: Self.longRequest.replacingOccurrences(of: "}", with: #", "stream": true}"#))
        XCTAssertTrue(streamed.receive().contains("200 OK"))
        try await Task.sleep(nanoseconds: 2_000_000_000)
        streamed.close()
        let afterStreamed = try await timeOfNextRequest(server)
        XCTAssertLessThan(afterStreamed, 3, "the next request waited for the abandoned stream")
        print(String(format: "%@: next request served %.2f s after a non-streamed client left, %.2f s after a streamed one",
                     arguments[1], afterPlain, afterStreamed))
        let cancelled = try await metric(server, "collm_requests_cancelled_total")
        XCTAssertEqual(cancelled, 2)
    }

    func testTheQueueIsBounded() async throws {
        let server = try ServeProcess(["--mode", "local", "--max-queue", "1"])
        defer { server.stop() }
        let running = try RawHTTPConnection(port: server.port)
        running.post("/v1/completions", json: Self.longRequest)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let waiting = try RawHTTPConnection(port: server.port)
        waiting.post("/v1/completions", json: Self.longRequest)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        for body in [#"{"prompt": "Hello", "max_tokens": 4}"#, #"{"prompt": "Hello", "max_tokens": 4, "stream": true}"#] {
            let refused = try await server.exchange("/v1/completions", body: body)
            XCTAssertEqual(refused.status, 503, refused.text)
            XCTAssertTrue(refused.text.contains("queue_full"), refused.text)
            XCTAssertGreaterThanOrEqual(Int(refused.headers["retry-after"] ?? "") ?? 0, 1, "\(refused.headers)")
        }
        let rejected = try await metric(server, #"collm_requests_rejected_total{reason="queue_full"}"#)
        XCTAssertEqual(rejected, 2)
        // Both clients leave: the waiting one gives up its place, the running one stops.
        waiting.close()
        running.close()
        let next = try await timeOfNextRequest(server)
        XCTAssertLessThan(next, 3)
    }

    func testAPIKeyIsRequiredBeyondLoopbackAndChecked() async throws {
        let open = try CollmProcess.run(["serve", "--host", "0.0.0.0", "--port", "0", "--mode", "edge", "--calibration", "none"],
                                        timeout: 60, environment: ["COLLM_API_KEY": ""])
        XCTAssertNotEqual(open.status, 0)
        XCTAssertTrue(open.err.contains("--api-key"), open.err)
        let server = try ServeProcess(["--host", "0.0.0.0", "--mode", "edge", "--calibration", "none"],
                                      environment: ["COLLM_API_KEY": "sesame-1234"])
        defer { server.stop() }
        let body = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}"#
        for headers in [[:], ["Authorization": "Bearer wrong"], ["Authorization": "sesame-1234"]] {
            let r = try await server.call("/v1/chat/completions", body: body, headers: headers)
            XCTAssertEqual(r.status, 401, "\(headers): \(r.text)")
            let error = try XCTUnwrap(try object(r.text)["error"] as? [String: Any], r.text)
            XCTAssertEqual(error["code"] as? String, "invalid_api_key")
            XCTAssertNotNil(error["message"] as? String)
        }
        let models = try await server.call("/v1/models")
        XCTAssertEqual(models.status, 401, "every route but /health needs the key")
        let ok = try await server.call("/v1/chat/completions", body: body, headers: ["Authorization": "Bearer sesame-1234"])
        XCTAssertEqual(ok.status, 200, ok.text)
        let health = try await server.call("/health")
        XCTAssertEqual(health.status, 200)
    }

    func testOpenAIRequestCorners() async throws {
        let server = try ServeProcess(["--mode", "local", "--ctx", "64"])
        defer { server.stop() }
        // include_usage: a last chunk with no choices carries the usage, before [DONE].
        let s = try await server.call("/v1/chat/completions", body: """
            {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 6, "stream": true,
             "stream_options": {"include_usage": true}}
            """)
        XCTAssertEqual(s.status, 200, s.text)
        let events = s.text.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        XCTAssertEqual(events.last, "[DONE]")
        let last = try object(try XCTUnwrap(events.dropLast().last))
        XCTAssertEqual((last["choices"] as? [Any])?.count, 0, "\(last)")
        let usage = try XCTUnwrap(last["usage"] as? [String: Int], "\(last)")
        let finish = try object(events[events.count - 3])
        let generated = try XCTUnwrap(((finish["collm"] as? [String: Any])?["sources"] as? [String])?.count)
        XCTAssertEqual(usage["completion_tokens"], generated)
        XCTAssertEqual(usage["total_tokens"], (usage["prompt_tokens"] ?? -1) + generated)
        XCTAssertFalse(events.dropLast(2).contains { $0.contains("\"usage\"") }, "usage only in the last chunk")

        // n > 1 is refused, not answered once.
        let n = try await server.call("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "hi"}], "n": 3}"#)
        XCTAssertEqual(n.status, 400, n.text)
        XCTAssertTrue(n.text.contains("n must be 1"), n.text)

        // A body that is not declared JSON is refused with 415.
        let form = try await server.call("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": "hi"}]}"#,
                                         headers: ["Content-Type": "application/x-www-form-urlencoded"])
        XCTAssertEqual(form.status, 415, form.text)
        XCTAssertTrue(form.text.contains("application/json"), form.text)

        // content: null is accepted for an assistant turn (as OpenAI does), refused with a clear
        // message (not "invalid JSON") for a user turn; text parts are read.
        let assistantNull = try await server.call("/v1/chat/completions", body: """
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null},
                          {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}], "max_tokens": 2}
            """)
        XCTAssertEqual(assistantNull.status, 200, assistantNull.text)
        let userNull = try await server.call("/v1/chat/completions", body: #"{"messages": [{"role": "user", "content": null}]}"#)
        XCTAssertEqual(userNull.status, 400, userNull.text)
        XCTAssertTrue(userNull.text.contains("messages[0].content") && !userNull.text.contains("not valid JSON"), userNull.text)

        // max_tokens past the context (64 here): a clear 400; what fits ends with "length".
        let prompt = "Once upon a time, in a small village by the sea, there lived an old fisherman who"
        let fits = try await server.call("/v1/completions", body: #"{"prompt": "\#(prompt)", "max_tokens": 1}"#)
        let promptTokens = try XCTUnwrap((try object(fits.text)["usage"] as? [String: Int])?["prompt_tokens"], fits.text)
        let room = 64 - promptTokens
        let tooMany = try await server.call("/v1/completions", body: #"{"prompt": "\#(prompt)", "max_tokens": \#(room + 1)}"#)
        XCTAssertEqual(tooMany.status, 400, tooMany.text)
        XCTAssertTrue(tooMany.text.contains("context_length_exceeded"), tooMany.text)
        let full = try await server.call("/v1/completions", body: #"{"prompt": "\#(prompt)", "max_tokens": \#(room)}"#)
        XCTAssertEqual(full.status, 200, full.text)
        let choice = try XCTUnwrap((try object(full.text)["choices"] as? [[String: Any]])?.first)
        let completion = try XCTUnwrap((try object(full.text)["usage"] as? [String: Int])?["completion_tokens"])
        XCTAssertEqual(choice["finish_reason"] as? String, completion == room ? "length" : "stop", full.text)
        XCTAssertGreaterThan(completion, 0, full.text)
        // Without max_tokens the default shrinks to what fits.
        let defaulted = try await server.call("/v1/completions", body: #"{"prompt": "\#(prompt)"}"#)
        XCTAssertEqual(defaulted.status, 200, defaulted.text)
        XCTAssertLessThanOrEqual((try object(defaulted.text)["usage"] as? [String: Int])?["completion_tokens"] ?? .max, room)
    }
}
