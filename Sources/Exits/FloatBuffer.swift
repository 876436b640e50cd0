/// A fixed-size, 64-byte aligned float buffer owned by a pass (activations and gradients are reused
/// across steps, never reallocated per batch).
package final class FloatBuffer: @unchecked Sendable {
    package let count: Int
    package let pointer: UnsafeMutablePointer<Float>

    package init(_ count: Int) {
        self.count = max(count, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: self.count * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.initializeMemory(as: Float.self, repeating: 0, count: self.count)
    }

    deinit { pointer.deallocate() }
}
