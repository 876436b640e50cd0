/// A compact open-addressing hash table from byte strings to 64-bit values. Keys live in one byte
/// arena, so a 150k-entry vocabulary is a handful of arrays instead of 150k heap-allocated keys,
/// and look-ups take an unsafe buffer without creating a String or Array.
struct ByteSequenceTable: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var hashes: [UInt64] = []
    private(set) var values: [UInt64] = []
    /// slot -> entry index, -1 when empty
    private var slots: [Int32]
    private var mask: Int

    init(minimumCapacity: Int = 16) {
        var capacity = 16
        while capacity < minimumCapacity * 2 { capacity <<= 1 }
        slots = [Int32](repeating: -1, count: capacity)
        mask = capacity - 1
        arena.reserveCapacity(minimumCapacity * 6)
        keyStart.reserveCapacity(minimumCapacity)
        keyLength.reserveCapacity(minimumCapacity)
        hashes.reserveCapacity(minimumCapacity)
        values.reserveCapacity(minimumCapacity)
    }

    var count: Int { values.count }

    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        // FNV-1a, then a final avalanche so the low bits used for the slot are well mixed.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3
        }
        h ^= h >> 29
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 32
        return h
    }

    @inline(__always)
    private func keyEquals(_ entry: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let len = Int(keyLength[entry])
        guard len == key.count else { return false }
        let start = Int(keyStart[entry])
        return arena.withUnsafeBufferPointer { a in
            for i in 0..<len where a[start + i] != key[i] { return false }
            return true
        }
    }

    /// Slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func findSlot(_ key: UnsafeBufferPointer<UInt8>, _ h: UInt64) -> Int {
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[slot])
            if e < 0 { return slot }
            if hashes[e] == h && keyEquals(e, key) { return slot }
            slot = (slot + 1) & mask
        }
    }

    func find(_ key: UnsafeBufferPointer<UInt8>) -> UInt64? {
        let e = Int(slots[findSlot(key, Self.hash(key))])
        return e < 0 ? nil : values[e]
    }

    func find(_ key: [UInt8]) -> UInt64? {
        key.withUnsafeBufferPointer { find($0) }
    }

    /// Inserts or overwrites.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: UInt64) {
        let h = Self.hash(key)
        let slot = findSlot(key, h)
        let e = Int(slots[slot])
        if e >= 0 {
            values[e] = value
            return
        }
        slots[slot] = Int32(values.count)
        keyStart.append(Int32(arena.count))
        keyLength.append(Int32(key.count))
        arena.append(contentsOf: key)
        hashes.append(h)
        values.append(value)
        if values.count * 2 > slots.count { grow() }
    }

    mutating func insert(_ key: [UInt8], value: UInt64) {
        key.withUnsafeBufferPointer { insert($0, value: value) }
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = [Int32](repeating: -1, count: capacity)
        mask = capacity - 1
        for e in 0..<values.count {
            var slot = Int(truncatingIfNeeded: hashes[e]) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(e)
        }
    }
}
