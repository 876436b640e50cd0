import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

/// The cloud's Health counters, read over gRPC. Benchmarks probe before and after a run and
/// subtract, to measure the cloud's work (rows through its layers, batch sizes) from the outside.
public struct CloudHealth: Sendable, Codable, Equatable {
    public var status = ""
    public var sessions = 0
    public var splitLayer = 0
    public var batches = 0
    public var batchedRows = 0
    public var batchedSessions = 0
    public var largestBatchSessions = 0
    public var fullModelRows = 0
    /// Resident memory of the cloud process in bytes (a gauge).
    public var rssBytes = 0

    public init() {}

    /// One Health RPC to `address` (HOST:PORT), with `token` as bearer if given.
    public static func probe(address: String, token: String?, trustRoots: String? = nil) async throws -> CloudHealth {
        let connector = try GRPCConnector(address: address, token: token, trustRoots: trustRoots)
        let metadata = connector.metadata
        let reply = try await withGRPCClient(transport: try connector.makeTransport()) { client in
            try await Collm_V1_Collab.Client(wrapping: client).health(
                request: ClientRequest(message: Collm_V1_HealthRequest(), metadata: metadata)) { try $0.message }
        }
        var health = CloudHealth()
        health.status = reply.status
        health.sessions = Int(reply.sessions)
        health.splitLayer = Int(reply.splitLayer)
        health.batches = Int(reply.batches)
        health.batchedRows = Int(reply.batchedRows)
        health.batchedSessions = Int(reply.batchedSessions)
        health.largestBatchSessions = Int(reply.largestBatchSessions)
        health.fullModelRows = Int(reply.fullModelRows)
        health.rssBytes = Int(reply.rssBytes)
        return health
    }

    /// Counter growth from `earlier` to `self` (gauges — sessions, split, largest batch, memory — are kept).
    public func since(_ earlier: CloudHealth) -> CloudHealth {
        var d = self
        d.batches -= earlier.batches
        d.batchedRows -= earlier.batchedRows
        d.batchedSessions -= earlier.batchedSessions
        d.fullModelRows -= earlier.fullModelRows
        return d
    }
}

/// This process's memory, for the Health reply.
public enum ProcessMemory {
    /// Resident set size in bytes (Linux: /proc/self/statm); 0 when unknown.
    public static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
