import CKernels

/// A weight matrix repacked once into the kernels' layout. `rows` outputs, `columns` inputs.
/// Several GGUF tensors can be stacked into one matrix (e.g. Q, K and V), so a layer converts its
/// input once and dispatches one product instead of three. The tensors may differ in type (K-quant
/// mixes such as Q4_K_M store V as Q6_K beside a Q4_K Q and K): each run of one type is a part with
/// its own packed rows, and parts whose types share an activation format share its conversion.
public final class WeightMatrix: @unchecked Sendable {
    /// The type of the first part (of every row unless the stack mixes types).
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    public let activations: ActivationPrecision
    public let packedBytes: Int
    private let parts: [Part]

    /// Consecutive rows of one type, packed.
    private struct Part {
        let kernelType: ck_type
        let rowOffset: Int
        let rows: Int
        let packed: UnsafeMutableRawPointer
        let bytes: Int
    }

    /// The distinct activation formats of the parts, in order of first use (one conversion each).
    private let activationFormats: [(format: Int32, type: ck_type)]

    /// Stacks the given tensors (same column count) row-wise and packs them, one part per run of a type.
    convenience init(file: GGUFFile, tensors: [GGUFTensorInfo], activations: ActivationPrecision = .int8) throws {
        guard let first = tensors.first else { throw GGUFError(path: file.path, reason: "empty weight stack") }
        for t in tensors {
            guard t.shape.count == 2, t.columns == first.columns else {
                throw GGUFError(path: file.path, reason: "tensor \(t.name) \(t.type) \(t.shape) cannot stack with \(first.name)")
            }
            guard t.type.isSupported else {
                throw GGUFError(path: file.path, reason: "tensor \(t.name) has type \(t.type), which this engine cannot compute yet")
            }
        }
        var runs: [[GGUFTensorInfo]] = []
        for t in tensors {
            if let last = runs.last?.last, last.type == t.type { runs[runs.count - 1].append(t) } else { runs.append([t]) }
        }
        var parts: [Part] = []
        var offset = 0
        for run in runs {
            let rowCount = run.reduce(0) { $0 + $1.rows }
            let rowBytes = ck_row_bytes(ck_type(rawValue: run[0].type.rawValue), Int64(first.columns))
            parts.append(Self.pack(type: run[0].type, rows: rowCount, rowOffset: offset, columns: first.columns) { staging in
                // Stack GGUF rows contiguously, then pack the whole run at once.
                var at = 0
                for t in run {
                    let data = file.data(for: t)
                    staging.advanced(by: at).copyMemory(from: data.baseAddress!, byteCount: data.count)
                    at += data.count
                }
                precondition(at == rowBytes * rowCount)
            })
            offset += rowCount
        }
        self.init(parts: parts, columns: first.columns, activations: activations)
    }

    /// An f32 matrix from row-major values (`rows` x `columns`), e.g. a fitted exit adapter.
    public convenience init(float values: [Float], rows: Int, columns: Int) {
        precondition(values.count == rows * columns && rows > 0 && columns > 0, "matrix shape")
        self.init(type: .f32, rows: rows, columns: columns) { staging in
            values.withUnsafeBytes { staging.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }

    /// Row-major f32 values quantized to `type` (GGUF layout) and packed: weights trained outside a GGUF file.
    public convenience init(quantizing values: [Float], rows: Int, columns: Int, type: GGMLType,
                            activations: ActivationPrecision = .int8) throws {
        guard rows > 0, columns > 0, values.count == rows * columns else {
            throw EngineError.shapeMismatch("\(values.count) values for a \(rows) x \(columns) matrix")
        }
        guard type.isSupported, columns % type.blockElements == 0 else {
            throw EngineError.shapeMismatch("rows of \(columns) values cannot be stored as \(type) (blocks of \(type.blockElements))")
        }
        let kt = ck_type(rawValue: type.rawValue)
        let rowBytes = ck_row_bytes(kt, Int64(columns))
        self.init(type: type, rows: rows, columns: columns, activations: activations) { staging in
            values.withUnsafeBufferPointer { v in
                for r in 0..<rows {
                    ck_quantize_row_ref(kt, v.baseAddress! + r * columns, staging + r * rowBytes, Int64(columns))
                }
            }
        }
    }

    /// The rows `selected` (in that order) of a GGUF matrix tensor, e.g. a shortlist of a head's vocabulary,
    /// in the tensor's own type or re-quantized to `type` from their values (fewer bytes to read per use).
    public convenience init(file: GGUFFile, tensor: GGUFTensorInfo, selectedRows selected: [Int], as type: GGMLType? = nil) throws {
        let target = type ?? tensor.type
        guard tensor.shape.count == 2, tensor.type.isSupported, !selected.isEmpty,
              selected.allSatisfy({ $0 >= 0 && $0 < tensor.rows }) else {
            throw GGUFError(path: file.path, reason: "cannot select \(selected.count) rows of \(tensor.name) \(tensor.type) \(tensor.shape)")
        }
        guard target.isSupported, tensor.columns % target.blockElements == 0 else {
            throw GGUFError(path: file.path, reason: "rows of \(tensor.name) (\(tensor.columns) values) cannot be stored as \(target)")
        }
        let source = ck_type(rawValue: tensor.type.rawValue), kt = ck_type(rawValue: target.rawValue)
        let rowBytes = ck_row_bytes(source, Int64(tensor.columns)), targetRowBytes = ck_row_bytes(kt, Int64(tensor.columns))
        let data = file.data(for: tensor)
        self.init(type: target, rows: selected.count, columns: tensor.columns) { staging in
            guard target != tensor.type else {
                for (j, r) in selected.enumerated() {
                    staging.advanced(by: j * rowBytes).copyMemory(from: data.baseAddress! + r * rowBytes, byteCount: rowBytes)
                }
                return
            }
            var values = [Float](repeating: 0, count: tensor.columns)
            for (j, r) in selected.enumerated() {
                ck_dequantize_row_ref(source, data.baseAddress! + r * rowBytes, &values, Int64(tensor.columns))
                ck_quantize_row_ref(kt, values, staging + j * targetRowBytes, Int64(tensor.columns))
            }
        }
    }

    /// Packs `rows` GGUF-layout rows that `fill` writes into a staging buffer.
    private convenience init(type: GGMLType, rows: Int, columns: Int, activations: ActivationPrecision = .int8,
                             fill: (UnsafeMutableRawPointer) -> Void) {
        self.init(parts: [Self.pack(type: type, rows: rows, rowOffset: 0, columns: columns, fill: fill)],
                  columns: columns, activations: activations)
    }

    private init(parts: [Part], columns: Int, activations: ActivationPrecision) {
        self.parts = parts
        self.type = GGMLType(rawValue: parts[0].kernelType.rawValue)
        self.rows = parts.reduce(0) { $0 + $1.rows }
        self.columns = columns
        self.activations = activations
        self.packedBytes = parts.reduce(0) { $0 + $1.bytes }
        var formats: [(format: Int32, type: ck_type)] = []
        for p in parts where !formats.contains(where: { $0.format == ck_act_format(p.kernelType) }) {
            formats.append((ck_act_format(p.kernelType), p.kernelType))
        }
        self.activationFormats = formats
    }

    private static func pack(type: GGMLType, rows: Int, rowOffset: Int, columns: Int,
                             fill: (UnsafeMutableRawPointer) -> Void) -> Part {
        let kt = ck_type(rawValue: type.rawValue)
        let staging = UnsafeMutableRawPointer.allocate(byteCount: ck_row_bytes(kt, Int64(columns)) * rows, alignment: 64)
        defer { staging.deallocate() }
        fill(staging)
        let bytes = ck_packed_size(kt, Int64(rows), Int64(columns))
        let packed = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        ck_pack(kt, staging, Int64(rows), Int64(columns), packed)
        return Part(kernelType: kt, rowOffset: rowOffset, rows: rows, packed: packed, bytes: bytes)
    }

    deinit { parts.forEach { $0.packed.deallocate() } }

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

    /// Converted-activation bytes needed for `n` input rows (one conversion per activation format).
    func activationBytes(rows n: Int) -> Int {
        activations == .f32 ? 0 : activationFormats.reduce(0) { $0 + ck_act_row_bytes($1.type, Int64(columns)) * n }
    }

    /// y[j * ldy + r] = W[r] · x[j] for n input rows of `columns` floats, rows split across the pool.
    func multiply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                  scratch: ActivationScratch, pool: ThreadPool) {
        if activations == .f32 {
            for part in parts {
                forEachRowRange(part, pool) { kt, packed, rowCount, cols, r0, r1 in
                    ck_matmul_f32act(kt, packed, rowCount, cols, x, Int64(n), y + part.rowOffset, Int64(ldy), r0, r1)
                }
            }
            return
        }
        let act = scratch.buffer(bytes: activationBytes(rows: n))
        var offset = 0
        for f in activationFormats {
            let rowBytes = ck_act_row_bytes(f.type, Int64(columns))
            if n >= 8 && pool.threadCount > 1 {
                // Rows convert independently: the same bytes however they are split.
                let (dst, cols) = (act + offset, columns)
                pool.parallelRanges(total: n) { r in
                    ck_convert_act(f.type, x + r.lowerBound * cols, Int64(r.count), Int64(cols), dst + r.lowerBound * rowBytes)
                }
            } else {
                ck_convert_act(f.type, x, Int64(n), Int64(columns), act + offset)
            }
            offset += rowBytes * n
        }
        multiplyConverted(act, rows: n, into: y, ldy: ldy, pool: pool)
    }

    /// As `multiply`, with activations already converted (shared by matrices of the same input): one
    /// block of `n` rows per activation format, in the order `multiply` writes them.
    func multiplyConverted(_ act: UnsafeRawPointer, rows n: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
                           pool: ThreadPool) {
        for part in parts {
            var a = act  // this part's format's block: after those of the formats before it
            for f in activationFormats {
                if f.format == ck_act_format(part.kernelType) { break }
                a += ck_act_row_bytes(f.type, Int64(columns)) * n
            }
            forEachRowRange(part, pool) { kt, packed, rowCount, cols, r0, r1 in
                ck_matmul(kt, packed, rowCount, cols, a, Int64(n), y + part.rowOffset, Int64(ldy), r0, r1)
            }
        }
    }

    /// Runs `kernel(type, packed, rows, columns, r0, r1)` for a part on the pool, one granule-aligned row range per thread.
    private func forEachRowRange(_ part: Part, _ pool: ThreadPool,
                                 _ kernel: (ck_type, UnsafeRawPointer, Int64, Int64, Int64, Int64) -> Void) {
        let (kt, rowCount, cols, packed) = (part.kernelType, Int64(part.rows), Int64(columns), UnsafeRawPointer(part.packed))
        pool.parallelRanges(total: part.rows, granule: Int(ck_row_granule(kt))) { range in
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
