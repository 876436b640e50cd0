import CollabCore
import CollabTransport
import Foundation
import LLM
#if canImport(Glibc)
import Glibc
#endif

/// What one request measured at the (virtual) user.
package struct RequestSample: Sendable {
    package var tokens = 0
    /// Time to the first token, and per output token after it (nil with fewer than two tokens).
    package var ttft = 0.0
    package var tpot: Double?
    package var error: String?
}

/// Something the load generator sends requests to: one request replays recorded session `index`.
package protocol LoadTarget: Sendable {
    func run(session index: Int) async -> RequestSample
}

extension RequestSample {
    /// A sample from the times (seconds since the request started) at which each token was known.
    package init(tokenTimes: [Double]) {
        tokens = tokenTimes.count
        ttft = tokenTimes.first ?? 0
        if tokenTimes.count > 1 { tpot = (tokenTimes.last! - tokenTimes.first!) / Double(tokenTimes.count - 1) }
    }
}

/// A virtual edge: replays a recorded collab or spec session over a real gRPC link, waiting the
/// recorded edge compute time between messages instead of computing, so the cloud sees real
/// pacing without edge CPU.
package struct ReplayTarget: LoadTarget {
    package let sessions: [RecordedSession]
    package let connector: GRPCConnector
    package let open: OpenRequest

    package func run(session index: Int) async -> RequestSample {
        let session = sessions[index % sessions.count]
        let start = Date()
        var ends: [Double] = []
        do {
            let link = try await connector.connect()
            defer { Task { await link.close() } }
            for step in session.steps {
                if step.gap > 0.0002 { try await Task.sleep(nanoseconds: UInt64(step.gap * 1e9)) }
                switch step.action {
                case .open:
                    // Declare what the session needs, as an edge that knows its token limit would, so admission
                    // reserves a realistic share of the cloud's memory.
                    var request = open
                    request.maxPositions = session.prompt.count + session.tokens.count + 16
                    _ = try await link.open(request)
                case .append(let first, let rows, let payload): try await link.append(firstPosition: first, rows: rows, payload: payload)
                case .infer(let position, let history):
                    _ = try await link.infer(position: position, sampling: session.sampling, topLogprobs: 0, history: history)
                case .verify(let first, let draft): _ = try await link.verify(firstPosition: first, draft: draft, sampling: session.sampling)
                case .truncate(let position): try await link.truncate(to: position)
                }
                ends.append(Date().timeIntervalSince(start))
            }
            await link.close()
        } catch {
            return RequestSample(error: "\(error)")
        }
        return RequestSample(tokenTimes: session.tokens.map { ($0.anchor >= 0 ? ends[$0.anchor] : 0) + $0.offset })
    }

    package init(sessions: [RecordedSession], connector: GRPCConnector, open: OpenRequest) {
        self.sessions = sessions
        self.connector = connector
        self.open = open
    }
}

/// A cloud-only user: sends the prompt and streams the same number of tokens from `collm cloud`.
package struct CloudOnlyTarget: LoadTarget {
    package let prompts: [(prompt: [Int], tokens: Int)]
    package let address: String

    package func run(session index: Int) async -> RequestSample {
        let (prompt, tokens) = prompts[index % prompts.count]
        do {
            // Exactly `tokens` tokens, end-of-generation or not, as the recorded session produced.
            let start = Date()
            var times: [Double] = []
            _ = try await GRPCCloudGeneration(connector: try GRPCConnector(address: address, token: nil))
                .generate(prompt: prompt, maxTokens: tokens, sampling: .greedy, stopTokens: []) { _ in
                    times.append(Date().timeIntervalSince(start))
                }
            var sample = RequestSample(tokenTimes: times)
            if times.count != tokens { sample.error = "got \(times.count) of \(tokens) tokens" }
            return sample
        } catch {
            return RequestSample(error: "\(error)")
        }
    }

    package init(prompts: [(prompt: [Int], tokens: Int)], address: String) {
        self.prompts = prompts
        self.address = address
    }
}

/// A llama-server user: the same prompt tokens and token count through its streaming `/completion`.
package struct LlamaServerTarget: LoadTarget {
    package let prompts: [(prompt: [Int], tokens: Int)]
    package let port: Int

    package func run(session index: Int) async -> RequestSample {
        let (prompt, tokens) = prompts[index % prompts.count]
        let body: [String: Any] = ["prompt": prompt, "n_predict": tokens, "stream": true, "ignore_eos": true,
                                   "temperature": 0, "cache_prompt": false]
        guard let json = try? JSONSerialization.data(withJSONObject: body) else { return RequestSample(error: "encoding") }
        let port = self.port
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Self.stream(port: port, body: json, expected: tokens))
            }
        }
    }

    /// One blocking HTTP/1.1 request over a plain socket, reading the server-sent events as they come.
    private static func stream(port: Int, body: Data, expected: Int) -> RequestSample {
        let start = Date()
        guard let socket = BlockingSocket(port: port) else { return RequestSample(error: "cannot connect to llama-server") }
        defer { socket.close() }
        let head = "POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        guard socket.send(Data(head.utf8) + body) else { return RequestSample(error: "send failed") }
        var times: [Double] = []
        var buffer = Data()
        var sawStop = false
        while let chunk = socket.receive() {
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                buffer.removeSubrange(buffer.startIndex...newline)
                guard line.hasPrefix("data: "), let data = line.dropFirst(6).data(using: .utf8),
                      let event = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
                if event["stop"] as? Bool == true, (event["content"] as? String ?? "").isEmpty,
                   (event["tokens"] as? [Any] ?? []).isEmpty {
                    sawStop = true
                    continue
                }
                times.append(Date().timeIntervalSince(start))
                if event["stop"] as? Bool == true { sawStop = true }
            }
        }
        var sample = RequestSample(tokenTimes: times)
        if !sawStop || times.count != expected { sample.error = "llama-server streamed \(times.count) of \(expected) tokens" }
        return sample
    }

    package init(prompts: [(prompt: [Int], tokens: Int)], port: Int) {
        self.prompts = prompts
        self.port = port
    }
}

/// A minimal blocking TCP client for loopback.
package final class BlockingSocket {
    private let fd: Int32

    package init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var timeout = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if connected != 0 {
            Glibc.close(fd)
            return nil
        }
    }

    package func send(_ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                sent += n
            }
            return true
        }
    }

    /// The next bytes, or nil at the end of the stream (or on error / timeout).
    package func receive() -> Data? {
        var bytes = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &bytes, bytes.count, 0)
        return n > 0 ? Data(bytes[0..<n]) : nil
    }

    package func close() { Glibc.close(fd) }
}
