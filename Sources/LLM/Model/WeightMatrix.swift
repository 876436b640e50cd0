import CKernels

/// A weight matrix repacked once into the kernels' layout. `rows` outputs, `columns` inputs.
/// Several GGUF tensors of one type can be stacked into one matrix (e.g. Q, K and V), so a layer
/// converts its input once and dispatches one product instead of three.
public final class WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    let packed: UnsafeMutableRawPointer
    public let packedBytes: Int

    var kernelType: ck_type { ck_type(rawValue: type.rawValue) }

    /// Stacks the given tensors (same type and column count) row-wise and packs them.
    init(file: GGUFFile, tensors: [GGUFTensorInfo]) throws {
        guard let first = tensors.first else { throw GGUFError(path: file.path, reason: "empty weight stack") }
        for t in tensors {
            guard t.shape.count == 2, t.type == first.type, t.columns == first.columns else {
                throw GGUFError(path: file.path, reason: "tensor \(t.name) \(t.type) \(t.shape) cannot stack with \(first.name)")
            }
            guard t.type.isSupported else {
                throw GGUFError(path: file.path, reason: "tensor \(t.name) has type \(t.type), which this engine cannot compute yet")
            }
        }
        type = first.type
        columns = first.columns
        rows = tensors.reduce(0) { $0 + $1.rows }
        let kt = ck_type(rawValue: first.type.rawValue)
        // Stack GGUF rows contiguously, then pack the whole stack at once.
        let rowBytes = ck_row_bytes(kt, Int64(columns))
        let staging = UnsafeMutableRawPointer.allocate(byteCount: rowBytes * rows, alignment: 64)
        defer { staging.deallocate() }
        var offset = 0
        for t in tensors {
            let data = file.data(for: t)
            staging.advanced(by: offset).copyMemory(from: data.baseAddress!, byteCount: data.count)
            offset += data.count
        }
        packedBytes = ck_packed_size(kt, Int64(rows), Int64(columns))
        packed = UnsafeMutableRawPointer.allocate(byteCount: max(packedBytes, 64), alignment: 64)
        ck_pack(kt, staging, Int64(rows), Int64(columns), packed)
    }

    deinit { packed.deallocate() }

    /// Converted-activation bytes needed for `n` input rows.
    func activationBytes(rows n: Int) -> Int { ck_act_row_bytes(kernelType, Int64(columns)) * n }

    /// y[j * ldy + r] = W[r] · x[j] for n input rows of `columns` floats, rows split across the pool.
    func multiply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                  scratch: ActivationScratch, pool: ThreadPool) {
        let act = scratch.buffer(bytes: activationBytes(rows: n))
        ck_convert_act(kernelType, x, Int64(n), Int64(columns), act)
        multiplyConverted(act, rows: n, into: y, ldy: ldy, pool: pool)
    }

    /// As `multiply`, with activations already converted (shared by matrices of the same input).
    func multiplyConverted(_ act: UnsafeRawPointer, rows n: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                           pool: ThreadPool) {
        let granule = Int(ck_row_granule(kernelType))
        let (kt, rowCount, cols, packed) = (kernelType, Int64(rows), Int64(columns), UnsafeRawPointer(self.packed))
        pool.parallelRanges(total: rows, granule: granule) { range in
            ck_matmul(kt, packed, rowCount, cols, act, Int64(n), y, Int64(ldy),
                      Int64(range.lowerBound), Int64(range.upperBound))
        }
    }
}

/// A growable, 64-byte aligned buffer for converted activations, reused across products.
final class ActivationScratch: @unchecked Sendable {
    private var pointer: UnsafeMutableRawPointer?
    private var capacity = 0

    func buffer(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity || pointer == nil {
            pointer?.deallocate()
            capacity = max(bytes, capacity * 2, 4096)
            pointer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        }
        return pointer!
    }

    deinit { pointer?.deallocate() }
}
