/// Merge ranks of a byte-level BPE vocabulary, keyed on the pair of token ids.
/// Value: rank in the high 32 bits, id of the merged token in the low 32 bits.
struct BPEMergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0
    private static let empty = UInt64.max

    init(minimumCapacity: Int) {
        var capacity = 16
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: capacity)
        values = [UInt64](repeating: 0, count: capacity)
        mask = capacity - 1
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Adds a merge unless the pair already has one (the earlier, lower rank wins, as in llama.cpp).
    mutating func insert(left: Int32, right: Int32, rank: Int, merged: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let k = Self.key(left, right)
        var s = Self.slot(k, mask)
        while keys[s] != Self.empty {
            if keys[s] == k { return }
            s = (s + 1) & mask
        }
        keys[s] = k
        values[s] = UInt64(UInt32(rank)) << 32 | UInt64(UInt32(bitPattern: merged))
        count += 1
    }

    /// (rank << 32 | merged id), or nil when the pair never merges.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64? {
        let k = Self.key(left, right)
        var s = Self.slot(k, mask)
        while true {
            let stored = keys[s]
            if stored == k { return values[s] }
            if stored == Self.empty { return nil }
            s = (s + 1) & mask
        }
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let capacity = keys.count * 2
        keys = [UInt64](repeating: Self.empty, count: capacity)
        values = [UInt64](repeating: 0, count: capacity)
        mask = capacity - 1
        for i in 0..<oldKeys.count where oldKeys[i] != Self.empty {
            var s = Self.slot(oldKeys[i], mask)
            while keys[s] != Self.empty { s = (s + 1) & mask }
            keys[s] = oldKeys[i]
            values[s] = oldValues[i]
        }
    }
}

/// The byte-level BPE merge loop for one pre-tokenized word.
///
/// A word starts as one symbol per byte (the token of that byte's character in the GPT-2 byte
/// alphabet); then, repeatedly, the adjacent pair with the lowest merge rank is merged, the
/// leftmost pair winning ties — llama.cpp's order exactly. Short words use a linked list with
/// cached pair ranks and a linear scan for the best pair; long words (minified code, base64, long
/// runs of one character) use a binary heap, so the cost stays O(n log n).
struct BPEMerger: Sendable {
    let merges: BPEMergeTable
    /// Token of each single byte, -1 when the vocabulary lacks it.
    let byteTokens: [Int32]

    static let heapThreshold = 48
    private static let noRank = Int32.max

    func encode(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], forceHeap: Bool = false) {
        let n = word.count
        if n == 0 { return }
        if n == 1 {
            let t = byteTokens[Int(word[0])]
            if t >= 0 { out.append(t) }
            return
        }
        if n == 2 {
            let a = byteTokens[Int(word[0])]
            let b = byteTokens[Int(word[1])]
            if a >= 0, b >= 0, let m = merges.lookup(a, b) {
                out.append(Int32(truncatingIfNeeded: m))
            } else {
                if a >= 0 { out.append(a) }
                if b >= 0 { out.append(b) }
            }
            return
        }
        if n < Self.heapThreshold && !forceHeap {
            encodeScan(word, into: &out)
        } else {
            encodeHeap(word, into: &out)
        }
    }

    @inline(__always)
    private func pairRank(_ a: Int32, _ b: Int32) -> (Int32, Int32) {
        guard a >= 0, b >= 0, let m = merges.lookup(a, b) else { return (Self.noRank, -1) }
        return (Int32(truncatingIfNeeded: m >> 32), Int32(truncatingIfNeeded: m))
    }

    private func encodeScan(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let n = word.count
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 4 * n) { buf in
            // sym: token per live symbol; next: linked list; rank/mergedId: the pair (i, next[i])
            let sym = buf.baseAddress!
            let next = sym + n
            let mergedId = next + n
            let rank = mergedId + n
            for i in 0..<n {
                sym[i] = byteTokens[Int(word[i])]
                next[i] = i + 1 < n ? Int32(i + 1) : -1
            }
            for i in 0..<(n - 1) {
                (rank[i], mergedId[i]) = pairRank(sym[i], sym[i + 1])
            }
            rank[n - 1] = Self.noRank
            while true {
                // best pair: lowest rank, leftmost on ties (strict < while scanning left to right)
                var best = -1
                var bestRank = Self.noRank
                var bestPrev = -1
                var p = -1
                var i = 0
                while i >= 0 {
                    if rank[i] < bestRank {
                        bestRank = rank[i]
                        best = i
                        bestPrev = p
                    }
                    p = i
                    i = Int(next[i])
                }
                if best < 0 { break }
                let j = Int(next[best])
                sym[best] = mergedId[best]
                next[best] = next[j]
                let k = Int(next[best])
                if k >= 0 {
                    (rank[best], mergedId[best]) = pairRank(sym[best], sym[k])
                } else {
                    rank[best] = Self.noRank
                }
                if bestPrev >= 0 {
                    (rank[bestPrev], mergedId[bestPrev]) = pairRank(sym[bestPrev], sym[best])
                }
            }
            var i = 0
            while i >= 0 {
                if sym[i] >= 0 { out.append(sym[i]) }
                i = Int(next[i])
            }
        }
    }

    private struct HeapEntry {
        /// rank << 32 | left index: ordering key (lowest rank, then leftmost)
        var key: UInt64
        var right: Int32
        var leftId: Int32
        var rightId: Int32
        var merged: Int32
    }

    private func encodeHeap(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let n = word.count
        var sym = [Int32](repeating: -1, count: n)
        var next = [Int32](repeating: -1, count: n)
        var prev = [Int32](repeating: -1, count: n)
        for i in 0..<n {
            sym[i] = byteTokens[Int(word[i])]
            next[i] = i + 1 < n ? Int32(i + 1) : -1
            prev[i] = Int32(i - 1)
        }
        var heap: [HeapEntry] = []
        heap.reserveCapacity(n)

        func push(_ e: HeapEntry) {
            heap.append(e)
            var c = heap.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                if heap[p].key <= heap[c].key { break }
                heap.swapAt(p, c)
                c = p
            }
        }
        func pop() -> HeapEntry {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var c = 0
                let count = heap.count
                while true {
                    let l = 2 * c + 1
                    if l >= count { break }
                    var m = l
                    if l + 1 < count && heap[l + 1].key < heap[l].key { m = l + 1 }
                    if heap[c].key <= heap[m].key { break }
                    heap.swapAt(c, m)
                    c = m
                }
            }
            return top
        }
        func addPair(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let (rank, merged) = pairRank(sym[left], sym[right])
            guard rank != Self.noRank else { return }
            push(
                HeapEntry(
                    key: UInt64(UInt32(rank)) << 32 | UInt64(left), right: Int32(right),
                    leftId: sym[left], rightId: sym[right], merged: merged))
        }

        for i in 0..<(n - 1) { addPair(i, i + 1) }
        let dead: Int32 = -2
        while !heap.isEmpty {
            let e = pop()
            let left = Int(e.key & 0xFFFF_FFFF)
            let right = Int(e.right)
            // stale: a side was merged away or changed since this pair was queued
            guard prev[left] != dead, prev[right] != dead, next[left] == e.right,
                sym[left] == e.leftId, sym[right] == e.rightId
            else { continue }
            sym[left] = e.merged
            next[left] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(left) }
            prev[right] = dead
            addPair(Int(prev[left]), left)
            addPair(left, Int(next[left]))
        }
        var i = 0
        while i >= 0 {
            if sym[i] >= 0 { out.append(sym[i]) }
            i = Int(next[i])
        }
    }
}
