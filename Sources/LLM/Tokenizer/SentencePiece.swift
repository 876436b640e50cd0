/// SentencePiece-style BPE over scores (`tokenizer.ggml.model = llama`), as llama.cpp runs it:
/// spaces become U+2581, a space is prefixed to the first text fragment and to text right after a
/// special token (when `add_space_prefix`), the text starts as one symbol per UTF-8 character,
/// and the adjacent pair whose concatenation is a token with the highest score is merged first
/// (leftmost on ties). Characters that never became a token fall back to `<0xXX>` byte tokens.
struct SentencePieceModel: Sendable {
    let scores: [Float]
    /// UTF-8 text of every token -> id
    let textToId: ByteSequenceTable
    /// token for each byte (`<0xXX>`, else the one-byte text), -1 if none
    let byteTokens: [Int32]
    let unknown: Int32
    let addSpacePrefix: Bool

    private struct Bigram {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32
        /// higher score first, then lower left index
        @inline(__always) func before(_ o: Bigram) -> Bool {
            score > o.score || (score == o.score && left < o.left)
        }
    }

    private static let spaceMarker: [UInt8] = [0xE2, 0x96, 0x81]

    func encode(_ fragment: UnsafeBufferPointer<UInt8>, prefixSpace: Bool, into out: inout [Int32]) {
        var text: [UInt8] = []
        text.reserveCapacity(fragment.count + 8)
        if prefixSpace && addSpacePrefix { text.append(contentsOf: Self.spaceMarker) }
        for b in fragment {
            if b == 0x20 { text.append(contentsOf: Self.spaceMarker) } else { text.append(b) }
        }
        if text.isEmpty { return }

        text.withUnsafeBufferPointer { t in
            // symbols: one per UTF-8 character
            var start: [Int32] = []
            var length: [Int32] = []
            var offset = 0
            while offset < t.count {
                let lead = t[offset]
                let len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
                let n = min(len, t.count - offset)
                start.append(Int32(offset))
                length.append(Int32(n))
                offset += n
            }
            let count = start.count
            var next = (0..<count).map { Int32($0 + 1 < count ? $0 + 1 : -1) }
            var prev = (0..<count).map { Int32($0 - 1) }
            var heap: [Bigram] = []

            func push(_ b: Bigram) {
                heap.append(b)
                var c = heap.count - 1
                while c > 0 {
                    let p = (c - 1) / 2
                    if !heap[c].before(heap[p]) { break }
                    heap.swapAt(p, c)
                    c = p
                }
            }
            func pop() -> Bigram {
                let top = heap[0]
                let last = heap.removeLast()
                if !heap.isEmpty {
                    heap[0] = last
                    var c = 0
                    while true {
                        let l = 2 * c + 1
                        if l >= heap.count { break }
                        var m = l
                        if l + 1 < heap.count && heap[l + 1].before(heap[l]) { m = l + 1 }
                        if !heap[m].before(heap[c]) { break }
                        heap.swapAt(c, m)
                        c = m
                    }
                }
                return top
            }
            func tryAdd(_ left: Int32, _ right: Int32) {
                guard left >= 0, right >= 0 else { return }
                let s = Int(start[Int(left)])
                let size = Int(length[Int(left)] + length[Int(right)])
                let key = UnsafeBufferPointer(rebasing: t[s..<(s + size)])
                guard let id = textToId.find(key) else { return }
                push(Bigram(score: scores[Int(id)], left: left, right: right, size: Int32(size)))
            }

            for i in 1..<max(count, 1) { tryAdd(Int32(i - 1), Int32(i)) }
            while !heap.isEmpty {
                let b = pop()
                let l = Int(b.left)
                let r = Int(b.right)
                if length[l] == 0 || length[r] == 0 || length[l] + length[r] != b.size { continue }
                length[l] += length[r]
                length[r] = 0
                next[l] = next[r]
                if next[r] >= 0 { prev[Int(next[r])] = b.left }
                tryAdd(prev[l], b.left)
                tryAdd(b.left, next[l])
            }

            var i: Int32 = 0
            while i >= 0 {
                let s = Int(start[Int(i)])
                let n = Int(length[Int(i)])
                let piece = UnsafeBufferPointer(rebasing: t[s..<(s + n)])
                if let id = textToId.find(piece) {
                    out.append(Int32(id))
                } else {
                    for byte in piece {
                        let id = byteTokens[Int(byte)]
                        if id >= 0 { out.append(id) } else if unknown >= 0 { out.append(unknown) }
                    }
                }
                i = next[Int(i)]
            }
        }
    }
}
