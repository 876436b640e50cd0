import Foundation

/// llama.cpp's `llama-server` as the cloud-only peer: continuous batching with one slot per user,
/// one thread, on a free loopback port, optionally pinned like our cloud.
package final class LlamaServerChild {
    package let process: Process
    package let port: Int
    private let log: TempFile

    package init(binary: String, model: String, slots: Int, contextPerSlot: Int, cpu: Int?, launcher: ChildLauncher) throws {
        port = try LoopbackPort.free()
        log = try TempFile(prefix: "collm-bench-llama-server")
        let arguments = ["-m", model, "-t", "1", "-tb", "1", "-np", "\(slots)", "-c", "\(slots * contextPerSlot)",
                         "--host", "127.0.0.1", "--port", "\(port)", "--no-webui"]
        var peer = launcher
        peer.executable = binary
        process = peer.makeProcess(arguments, cpu: cpu)
        process.standardOutput = try log.writer()
        process.standardError = try log.writer()
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            guard process.isRunning else { throw BenchError("llama-server exited: \(log.contents.suffix(600))") }
            if Self.healthy(port: port) { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        stop()
        throw BenchError("llama-server did not become ready in 120 s: \(log.contents.suffix(600))")
    }

    private static func healthy(port: Int) -> Bool {
        guard let socket = BlockingSocket(port: port) else { return false }
        defer { socket.close() }
        guard socket.send(Data("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)),
              let reply = socket.receive() else { return false }
        return String(decoding: reply.prefix(16), as: UTF8.self).contains(" 200")
    }

    package func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}
