import CollabCore
import LLM

/// The encoded boundary states the edge has produced, one payload per position, kept so a session
/// can be replayed to a cloud that lost it (restart, eviction) without recomputing anything.
struct UploadLog {
    private(set) var payloads: [[UInt8]] = []

    var count: Int { payloads.count }

    mutating func record(_ rowPayloads: [[UInt8]]) { payloads += rowPayloads }

    /// Encodes each row of `states` with `codec` and records it as one position.
    mutating func record(_ states: HiddenStates, codec: HiddenStateCodec) throws {
        payloads += try (0..<states.rows).map { try codec.encode(states.rows($0..<$0 + 1)) }
    }

    /// Concatenated payload of positions [from, to).
    func payload(_ range: Range<Int>) -> [UInt8] {
        payloads[range].flatMap { $0 }
    }
}

extension UploadLog {
    /// Forgets positions at and after `count` (a rejected speculative draft).
    mutating func truncate(to count: Int) {
        if count < payloads.count { payloads.removeSubrange(count...) }
    }
}
