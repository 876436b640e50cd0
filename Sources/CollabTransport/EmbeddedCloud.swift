import Cloud
import Foundation
import LLM

/// A cloud in the edge's own process, for `generate` and `serve` without `--cloud`: the same engine
/// and the same gRPC protocol, on a free loopback port, stopped with `shutdown()`. It holds the
/// whole model, so it serves every mode (collab, spec, naive and cloud).
public final class EmbeddedCloud: Sendable {
    /// HOST:PORT to give the edge's clients.
    public let address: String
    private let server: CloudServer
    private let engine: CloudEngine
    private let task: Task<Void, Error>

    private init(address: String, server: CloudServer, engine: CloudEngine, task: Task<Void, Error>) {
        self.address = address
        self.server = server
        self.engine = engine
        self.task = task
    }

    public static func start(file: GGUFFile, split: Int, activations: ActivationPrecision, threads: Int) async throws -> EmbeddedCloud {
        let model = try LlamaModel(file: file, activations: activations, pool: ThreadPool(threadCount: threads))
        let engine = CloudEngine(manager: ContextManager(model: model, fingerprint: file.fingerprint(), splitLayer: split))
        let server = try CloudServer(host: "127.0.0.1", port: 0, service: CloudService(engine: engine),
                                     principals: Principals(tokens: [:]))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await server.run { continuation.yield($0) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            engine.shutdown()
            _ = try await task.value
            throw CloudServerError("the embedded cloud did not start")
        }
        return EmbeddedCloud(address: "127.0.0.1:\(port)", server: server, engine: engine, task: task)
    }

    /// Stops serving and waits for the server to end.
    public func shutdown() async {
        server.shutdown()
        _ = try? await task.value
        engine.shutdown()
    }
}
