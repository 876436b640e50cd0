import CollabCore
import Foundation
import LLM

/// One edge session's state in the cloud: its KV cache for the cloud layers and the uploaded
/// boundary states not yet computed. Positions `0..<cache.count` are computed; the next
/// `pending.rows` positions are uploaded and wait for an INFER that needs them.
final class CloudSession {
    let id: SessionID
    let owner: String
    let codec: HiddenStateCodec
    let cache: KVCache
    let maxPositions: Int
    let reservedBytes: Int
    var pending: HiddenStates
    var lastUse: Date
    var sampler: Sampler?
    // Accounting.
    var rowsComputed = 0
    var infers = 0
    var busySeconds = 0.0
    var bytesReceived = 0

    init(id: SessionID, owner: String, codec: HiddenStateCodec, cache: KVCache, maxPositions: Int, reservedBytes: Int) {
        self.id = id
        self.owner = owner
        self.codec = codec
        self.cache = cache
        self.maxPositions = maxPositions
        self.reservedBytes = reservedBytes
        pending = HiddenStates(rows: 0, width: codec.width)
        lastUse = Date()
    }

    /// Positions uploaded so far (computed or pending).
    var positionsHeld: Int { cache.count + pending.rows }
}
