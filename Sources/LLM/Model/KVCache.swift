/// Keys and values of one sequence for a range of layers, f32, position-major
/// (`[position][kvHead][headDim]`), grown on demand up to `capacity` positions.
public final class KVCache: @unchecked Sendable {
    public let layers: Range<Int>
    public let kvDim: Int
    public let capacity: Int
    /// Positions held (the next token goes at `count`).
    public private(set) var count = 0
    private var allocated = 0
    private var keys: [UnsafeMutablePointer<Float>] = []
    private var values: [UnsafeMutablePointer<Float>] = []

    public init(layers: Range<Int>, kvDim: Int, capacity: Int) {
        self.layers = layers
        self.kvDim = kvDim
        self.capacity = capacity
    }

    deinit { release() }

    /// Bytes held now.
    public var bytes: Int { allocated * kvDim * 4 * 2 * layers.count }

    /// Makes room for `positions` positions; false when that exceeds the capacity.
    func reserve(_ positions: Int) -> Bool {
        guard positions <= capacity else { return false }
        if positions <= allocated { return true }
        let newSize = min(capacity, max(positions, allocated * 2, 64))
        let size = newSize * kvDim
        var newKeys: [UnsafeMutablePointer<Float>] = []
        var newValues: [UnsafeMutablePointer<Float>] = []
        for i in 0..<layers.count {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: size)
            let v = UnsafeMutablePointer<Float>.allocate(capacity: size)
            if allocated > 0 {
                k.update(from: keys[i], count: count * kvDim)
                v.update(from: values[i], count: count * kvDim)
            }
            newKeys.append(k)
            newValues.append(v)
        }
        release()
        keys = newKeys
        values = newValues
        allocated = newSize
        return true
    }

    func keys(layer: Int) -> UnsafeMutablePointer<Float> { keys[layer - layers.lowerBound] }
    func values(layer: Int) -> UnsafeMutablePointer<Float> { values[layer - layers.lowerBound] }

    /// Records that positions up to `newCount` are filled (after all layers wrote them).
    func commit(count newCount: Int) { count = newCount }

    /// Forgets positions at and after `position` (for rewinding drafts or resyncs).
    public func truncate(to position: Int) {
        count = min(count, max(0, position))
    }

    /// A copy of one layer's keys and values for the held positions (for tests and inspection).
    public func snapshot(layer: Int) -> (keys: [Float], values: [Float]) {
        let n = count * kvDim
        return (Array(UnsafeBufferPointer(start: keys(layer: layer), count: n)),
                Array(UnsafeBufferPointer(start: values(layer: layer), count: n)))
    }

    private func release() {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
        keys = []
        values = []
    }
}
