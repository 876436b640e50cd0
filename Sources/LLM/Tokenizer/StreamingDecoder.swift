/// Turns a stream of token ids into text incrementally. A UTF-8 character can be split across
/// tokens (byte-level BPE splits rare characters and emoji into byte tokens), so the decoder
/// returns only complete characters and holds an unfinished multi-byte sequence back until the
/// next token completes it. `finish()` flushes whatever is left (an unfinished sequence becomes
/// U+FFFD).
public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    public let skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Bytes held back waiting for the rest of a character.
    public var pendingByteCount: Int { pending.count }

    /// Adds one token; returns the text that is now complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        tokenizer.appendPiece(id, skipSpecial: skipSpecial, to: &pending)
        let cut = Self.completePrefixLength(pending)
        if cut == 0 { return "" }
        let text = String(decoding: pending[0..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Adds several tokens; returns the complete text.
    public mutating func append<S: Sequence>(contentsOf ids: S) -> String where S.Element == Int {
        var s = ""
        for id in ids { s += append(id) }
        return s
    }

    /// Returns whatever is held back and resets the decoder.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a (so far valid) multi-byte sequence.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // find the start of the last character: step back over at most 3 continuation bytes
        var i = n - 1
        var continuation = 0
        while i >= 0 && continuation < 3 && bytes[i] & 0xC0 == 0x80 {
            i -= 1
            continuation += 1
        }
        guard i >= 0 else { return n }  // only continuation bytes: invalid, let them through
        let lead = bytes[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return n  // ASCII or invalid lead byte: nothing to wait for
        }
        let have = n - i
        return have < need ? i : n
    }
}
