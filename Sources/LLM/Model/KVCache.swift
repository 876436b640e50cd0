/// Keys and values of one sequence for a range of layers, f32, position-major
/// (`[position][kvHead][headDim]`), grown on demand up to `capacity` positions.
/// Each layer tracks its own filled length: with early exits, a token's upper layers may be
/// computed later than its lower ones (deferred completion), so layers can briefly differ.
public final class KVCache: @unchecked Sendable {
    public let layers: Range<Int>
    public let kvDim: Int
    public let capacity: Int
    /// Positions filled in every layer (the next token goes at `count` once all layers catch up).
    public var count: Int { layerCounts.min() ?? 0 }
    /// Positions filled per layer, indexed from `layers.lowerBound`.
    public private(set) var layerCounts: [Int]
    private var allocated = 0
    private var keys: [UnsafeMutablePointer<Float>] = []
    private var values: [UnsafeMutablePointer<Float>] = []

    public init(layers: Range<Int>, kvDim: Int, capacity: Int) {
        self.layers = layers
        self.kvDim = kvDim
        self.capacity = capacity
        layerCounts = [Int](repeating: 0, count: layers.count)
    }

    /// Positions filled in one layer.
    public func count(layer: Int) -> Int { layerCounts[layer - layers.lowerBound] }

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
                k.update(from: keys[i], count: layerCounts[i] * kvDim)
                v.update(from: values[i], count: layerCounts[i] * kvDim)
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

    /// Records that `layer` holds positions up to `newCount`.
    func commit(layer: Int, count newCount: Int) { layerCounts[layer - layers.lowerBound] = newCount }

    /// Forgets positions at and after `position` in every layer (for rewinding drafts or resyncs).
    public func truncate(to position: Int) {
        layerCounts = layerCounts.map { min($0, max(0, position)) }
    }

    /// A copy of one layer's keys and values for the held positions (for tests and inspection).
    public func snapshot(layer: Int) -> (keys: [Float], values: [Float]) {
        let n = count(layer: layer) * kvDim
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
