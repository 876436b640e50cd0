import CKernels

/// A weight matrix repacked once into the kernels' layout. `rows` outputs, `columns` inputs.
/// Several GGUF tensors of one type can be stacked into one matrix (e.g. Q, K and V), so a layer
/// converts its input once and dispatches one product instead of three.
public final class WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    public let activations: ActivationPrecision
    let packed: UnsafeMutableRawPointer
    public let packedBytes: Int

    var kernelType: ck_type { ck_type(rawValue: type.rawValue) }

    /// Stacks the given tensors (same type and column count) row-wise and packs them.
    convenience init(file: GGUFFile, tensors: [GGUFTensorInfo], activations: ActivationPrecision = .int8) throws {
        guard let first = tensors.first else { throw GGUFError(path: file.path, reason: "empty weight stack") }
        for t in tensors {
            guard t.shape.count == 2, t.type == first.type, t.columns == first.columns else {
                throw GGUFError(path: file.path, reason: "tensor \(t.name) \(t.type) \(t.shape) cannot stack with \(first.name)")
            }
            guard t.type.isSupported else {
                throw GGUFError(path: file.path, reason: "tensor \(t.name) has type \(t.type), which this engine cannot compute yet")
            }
        }
        let rowBytes = ck_row_bytes(ck_type(rawValue: first.type.rawValue), Int64(first.columns))
        self.init(type: first.type, rows: tensors.reduce(0) { $0 + $1.rows }, columns: first.columns,
                  activations: activations) { staging in
            // Stack GGUF rows contiguously, then pack the whole stack at once.
            var offset = 0
            for t in tensors {
                let data = file.data(for: t)
                staging.advanced(by: offset).copyMemory(from: data.baseAddress!, byteCount: data.count)
                offset += data.count
            }
            precondition(offset == rowBytes * tensors.reduce(0) { $0 + $1.rows })
        }
    }

    /// An f32 matrix from row-major values (`rows` x `columns`), e.g. a fitted exit adapter.
    public convenience init(float values: [Float], rows: Int, columns: Int) {
        precondition(values.count == rows * columns && rows > 0 && columns > 0, "matrix shape")
        self.init(type: .f32, rows: rows, columns: columns) { staging in
            values.withUnsafeBytes { staging.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    /// The rows `selected` (in that order) of a GGUF matrix tensor, e.g. a shortlist of a head's vocabulary.
    public convenience init(file: GGUFFile, tensor: GGUFTensorInfo, selectedRows selected: [Int]) throws {
        guard tensor.shape.count == 2, tensor.type.isSupported, !selected.isEmpty,
              selected.allSatisfy({ $0 >= 0 && $0 < tensor.rows }) else {
            throw GGUFError(path: file.path, reason: "cannot select \(selected.count) rows of \(tensor.name) \(tensor.type) \(tensor.shape)")
        }
        let rowBytes = ck_row_bytes(ck_type(rawValue: tensor.type.rawValue), Int64(tensor.columns))
        let data = file.data(for: tensor)
        self.init(type: tensor.type, rows: selected.count, columns: tensor.columns) { staging in
            for (j, r) in selected.enumerated() {
                staging.advanced(by: j * rowBytes).copyMemory(from: data.baseAddress! + r * rowBytes, byteCount: rowBytes)
            }
        }
    }

    /// Packs `rows` GGUF-layout rows that `fill` writes into a staging buffer.
    private init(type: GGMLType, rows: Int, columns: Int, activations: ActivationPrecision = .int8,
                 fill: (UnsafeMutableRawPointer) -> Void) {
        self.type = type
        self.activations = activations
        self.rows = rows
        self.columns = columns
        let kt = ck_type(rawValue: type.rawValue)
        let staging = UnsafeMutableRawPointer.allocate(byteCount: ck_row_bytes(kt, Int64(columns)) * rows, alignment: 64)
        defer { staging.deallocate() }
        fill(staging)
        packedBytes = ck_packed_size(kt, Int64(rows), Int64(columns))
        packed = UnsafeMutableRawPointer.allocate(byteCount: max(packedBytes, 64), alignment: 64)
        ck_pack(kt, staging, Int64(rows), Int64(columns), packed)
    }

    deinit { packed.deallocate() }

    /// W x for each row of `x`: `x.rows` output rows of `rows` values.
    public func apply(_ x: HiddenStates, pool: ThreadPool) -> [Float] {
        precondition(x.width == columns, "input width \(x.width), matrix columns \(columns)")
        var out = [Float](repeating: 0, count: x.rows * rows)
        guard x.rows > 0 else { return out }
        let scratch = ActivationScratch()
        x.values.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { y in
                multiply(xp.baseAddress!, rows: x.rows, into: y.baseAddress!, ldy: rows, scratch: scratch, pool: pool)
            }
        }
        return out
    }

    /// Converted-activation bytes needed for `n` input rows.
    func activationBytes(rows n: Int) -> Int {
        activations == .f32 ? 0 : ck_act_row_bytes(kernelType, Int64(columns)) * n
    }

    /// y[j * ldy + r] = W[r] · x[j] for n input rows of `columns` floats, rows split across the pool.
    func multiply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                  scratch: ActivationScratch, pool: ThreadPool) {
        if activations == .f32 {
            forEachRowRange(pool) { kt, packed, rowCount, cols, r0, r1 in
                ck_matmul_f32act(kt, packed, rowCount, cols, x, Int64(n), y, Int64(ldy), r0, r1)
            }
            return
        }
        let act = scratch.buffer(bytes: activationBytes(rows: n))
        ck_convert_act(kernelType, x, Int64(n), Int64(columns), act)
        multiplyConverted(act, rows: n, into: y, ldy: ldy, pool: pool)
    }

    /// As `multiply`, with activations already converted (shared by matrices of the same input).
    func multiplyConverted(_ act: UnsafeRawPointer, rows n: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                           pool: ThreadPool) {
        forEachRowRange(pool) { kt, packed, rowCount, cols, r0, r1 in
            ck_matmul(kt, packed, rowCount, cols, act, Int64(n), y, Int64(ldy), r0, r1)
        }
    }

    /// Runs `kernel(type, packed, rows, columns, r0, r1)` on the pool, one granule-aligned row range per thread.
    private func forEachRowRange(_ pool: ThreadPool,
                                 _ kernel: (ck_type, UnsafeRawPointer, Int64, Int64, Int64, Int64) -> Void) {
        let (kt, rowCount, cols, packed) = (kernelType, Int64(rows), Int64(columns), UnsafeRawPointer(self.packed))
        pool.parallelRanges(total: rows, granule: Int(ck_row_granule(kernelType))) { range in
            kernel(kt, packed, rowCount, cols, Int64(range.lowerBound), Int64(range.upperBound))
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
