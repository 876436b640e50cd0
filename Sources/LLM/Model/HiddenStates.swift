import CKernels

/// Rows of activations between layers: `rows` vectors of `width` floats, row-major. This is what
/// crosses a layer-range boundary (edge -> cloud).
public struct HiddenStates: Sendable, Equatable {
    public var values: [Float]
    public let width: Int

    public init(values: [Float], width: Int) {
        precondition(width > 0 && values.count % width == 0, "hidden states must be whole rows")
        self.values = values
        self.width = width
    }

    public init(rows: Int, width: Int) {
        self.init(values: [Float](repeating: 0, count: rows * width), width: width)
    }

    public var rows: Int { values.count / width }

    public func row(_ index: Int) -> ArraySlice<Float> {
        values[index * width..<(index + 1) * width]
    }

    /// Rows [range) as a new value.
    public func rows(_ range: Range<Int>) -> HiddenStates {
        HiddenStates(values: Array(values[range.lowerBound * width..<range.upperBound * width]), width: width)
    }

    public mutating func append(_ other: HiddenStates) {
        precondition(other.width == width)
        values.append(contentsOf: other.values)
    }
}

/// One sequence's rows within a batch: `count` consecutive rows at positions
/// `position ..< position + count` of `cache`.
public struct BatchSegment: @unchecked Sendable {
    public let cache: KVCache
    public let position: Int
    public let count: Int

    public init(cache: KVCache, position: Int, count: Int) {
        self.cache = cache
        self.position = position
        self.count = count
    }
}

extension HiddenStates {
    /// How many values are NaN, infinite or beyond ±`bound` (states from another process are untrusted).
    public func countOutside(bound: Float) -> Int {
        values.withUnsafeBufferPointer { Int(ck_count_outside($0.baseAddress, Int64($0.count), bound)) }
    }
}
