import LLM

/// A fitted affine map z = A h + b, held as an f32 matrix in the kernels' layout.
public final class ExitAdapter: ExitTransform, Sendable {
    public let matrix: [Float]
    public let bias: [Float]
    private let packed: WeightMatrix

    /// `matrix` is row-major width x width (z_i = sum_j A[i][j] h_j + b_i).
    public init(matrix: [Float], bias: [Float]) {
        precondition(!bias.isEmpty && matrix.count == bias.count * bias.count, "adapter shape")
        self.matrix = matrix
        self.bias = bias
        packed = WeightMatrix(float: matrix, rows: bias.count, columns: bias.count)
    }

    public var width: Int { bias.count }

    public var weightBytes: Int { packed.packedBytes + bias.count * MemoryLayout<Float>.size }

    public func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates {
        var out = packed.apply(hidden, pool: pool)
        let w = width
        for r in 0..<hidden.rows {
            for i in 0..<w { out[r * w + i] += bias[i] }
        }
        return HiddenStates(values: out, width: w)
    }
}
