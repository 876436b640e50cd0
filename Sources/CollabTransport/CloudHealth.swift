import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// The cloud's Health counters, read over gRPC. Benchmarks probe before and after a run and
/// subtract, to measure the cloud's work (rows through its layers, batch sizes) from the outside.
public struct CloudHealth: Sendable, Codable, Equatable {
    public var sessions = 0
    public var splitLayer = 0
    public var batches = 0
    public var batchedRows = 0
    public var batchedSessions = 0
    public var largestBatchSessions = 0
    public var fullModelRows = 0

    public init() {}

    /// One Health RPC to `address` (HOST:PORT), with `token` as bearer if given.
    public static func probe(address: String, token: String?) async throws -> CloudHealth {
        let connector = try GRPCConnector(address: address, token: token)
        let metadata = connector.metadata
        let reply = try await withGRPCClient(transport: try connector.makeTransport()) { client in
            try await Collm_V1_Collab.Client(wrapping: client).health(
                request: ClientRequest(message: Collm_V1_HealthRequest(), metadata: metadata)) { try $0.message }
        }
        var health = CloudHealth()
        health.sessions = Int(reply.sessions)
        health.splitLayer = Int(reply.splitLayer)
        health.batches = Int(reply.batches)
        health.batchedRows = Int(reply.batchedRows)
        health.batchedSessions = Int(reply.batchedSessions)
        health.largestBatchSessions = Int(reply.largestBatchSessions)
        health.fullModelRows = Int(reply.fullModelRows)
        return health
    }

    /// Counter growth from `earlier` to `self` (gauges — sessions, split, largest batch — are kept).
    public func since(_ earlier: CloudHealth) -> CloudHealth {
        var d = self
        d.batches -= earlier.batches
        d.batchedRows -= earlier.batchedRows
        d.batchedSessions -= earlier.batchedSessions
        d.fullModelRows -= earlier.fullModelRows
        return d
    }
}
