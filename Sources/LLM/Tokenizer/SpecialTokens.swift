/// Finds special tokens (control, user-defined and unknown types) in raw text before
/// pre-tokenization, with llama.cpp's precedence: tokens are tried longest first, and each one
/// claims its non-overlapping occurrences, left to right, in the text not yet claimed.
/// Control and unknown tokens are only recognised when parsing special tokens is requested;
/// user-defined tokens always are.
struct SpecialTokenMatcher: Sendable {
    struct Entry: Sendable {
        let id: Int32
        let bytes: [UInt8]
        /// user-defined tokens match even when special tokens are not parsed
        let always: Bool
    }

    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Sorted by decreasing byte length (ties by id).
    let entries: [Entry]
    /// first byte -> indices into `entries`
    private let byFirstByte: [[Int32]]

    init(entries unsorted: [Entry]) {
        let sorted = unsorted.filter { !$0.bytes.isEmpty }.sorted {
            $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id
        }
        var index = [[Int32]](repeating: [], count: 256)
        for (i, e) in sorted.enumerated() {
            index[Int(e.bytes[0])].append(Int32(i))
        }
        entries = sorted
        byFirstByte = index
    }

    var isEmpty: Bool { entries.isEmpty }

    func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        let n = text.count
        if n == 0 { return [] }
        // 1. every occurrence of every eligible special token: (entry index, position)
        var occurrences: [(entry: Int32, pos: Int)] = []
        for pos in 0..<n {
            let candidates = byFirstByte[Int(text[pos])]
            if candidates.isEmpty { continue }
            for c in candidates {
                let e = entries[Int(c)]
                guard parseSpecial || e.always, e.bytes.count <= n - pos else { continue }
                var match = true
                e.bytes.withUnsafeBufferPointer { b in
                    for k in 1..<b.count where b[k] != text[pos + k] {
                        match = false
                        break
                    }
                }
                if match { occurrences.append((c, pos)) }
            }
        }
        if occurrences.isEmpty { return [.text(0..<n)] }

        // 2. longest token first, each claiming free occurrences left to right
        occurrences.sort { $0.entry != $1.entry ? $0.entry < $1.entry : $0.pos < $1.pos }
        var claimed: [(start: Int, end: Int, id: Int32)] = []  // sorted by start, disjoint
        for occ in occurrences {
            let e = entries[Int(occ.entry)]
            let start = occ.pos
            let end = start + e.bytes.count
            // first claimed interval starting at or after `start`
            var lo = 0
            var hi = claimed.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if claimed[mid].start < start { lo = mid + 1 } else { hi = mid }
            }
            if lo > 0 && claimed[lo - 1].end > start { continue }
            if lo < claimed.count && claimed[lo].start < end { continue }
            claimed.insert((start, end, e.id), at: lo)
        }

        // 3. fragments in text order
        var fragments: [Fragment] = []
        var cursor = 0
        for c in claimed {
            if c.start > cursor { fragments.append(.text(cursor..<c.start)) }
            fragments.append(.token(c.id))
            cursor = c.end
        }
        if cursor < n { fragments.append(.text(cursor..<n)) }
        return fragments
    }
}
