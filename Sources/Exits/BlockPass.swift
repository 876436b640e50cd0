import CKernels
import LLM

/// Forward and backward of the residual MLP exit block over up to `capacity` rows, keeping the
/// activations the backward pass needs. Parameters and inputs are borrowed pointers (the flat layout
/// of `ExitBlockShape`), so training updates them in place without copies.
package final class BlockPass: @unchecked Sendable {
    package let shape: ExitBlockShape
    package let capacity: Int
    private let u, invRMS, a, sa, dsa, du: FloatBuffer
    private let output: FloatBuffer

    /// The block's output z of the last forward pass (rows x width).
    package var z: UnsafeMutablePointer<Float> { output.pointer }

    package init(shape: ExitBlockShape, rows: Int) {
        self.shape = shape
        capacity = max(rows, 1)
        let (d, h) = (shape.width, shape.hiddenWidth)
        u = FloatBuffer(capacity * d)
        invRMS = FloatBuffer(capacity)
        a = FloatBuffer(capacity * h)
        sa = FloatBuffer(capacity * h)
        dsa = FloatBuffer(capacity * h)
        du = FloatBuffer(capacity * d)
        output = FloatBuffer(capacity * d)
    }

    /// z = base(h) + W2 silu(W1 rmsnorm(h; g)) for `rows` rows of `hidden`.
    package func forward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, rows n: Int, pool: ThreadPool) {
        precondition(n <= capacity)
        let (d, hw, s) = (shape.width, shape.hiddenWidth, shape)
        ck_train_rmsnorm(h, p + s.norm.lowerBound, u.pointer, invRMS.pointer, Int64(n), Int64(d), s.epsilon)
        parallelGemm(pool, transposeB: true, m: n, n: hw, k: d, a: u.pointer, lda: d,
                     b: p + s.up.lowerBound, ldb: d, c: a.pointer, ldc: hw)
        ck_train_silu(a.pointer, sa.pointer, Int64(n * hw))
        parallelGemm(pool, transposeB: true, m: n, n: d, k: hw, a: sa.pointer, lda: hw,
                     b: p + s.down.lowerBound, ldb: hw, c: z, ldc: d)
        if s.hasAdapter {
            parallelGemm(pool, transposeB: true, m: n, n: d, k: d, a: h, lda: d,
                         b: p + s.adapterMatrix.lowerBound, ldb: d, beta: 1, c: z, ldc: d)
            for r in 0..<n { ck_add(z + r * d, p + s.adapterBias.lowerBound, Int64(d)) }
        } else {
            ck_add(z, h, Int64(n * d))
        }
    }

    /// Overwrites `gradient` (flat layout) with d loss / d parameters, given dz = d loss / d z for the
    /// rows of the last forward pass (same parameters and hidden states).
    package func backward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, dz: UnsafePointer<Float>,
                  rows n: Int, gradient g: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let (d, hw, s) = (shape.width, shape.hiddenWidth, shape)
        // dW2 = dz^T silu(a); d silu(a) = dz W2; da = d silu(a) * silu'(a).
        parallelGemm(pool, transposeA: true, m: d, n: hw, k: n, a: dz, lda: d, b: sa.pointer, ldb: hw,
                     c: g + s.down.lowerBound, ldc: hw)
        parallelGemm(pool, m: n, n: hw, k: d, a: dz, lda: d, b: p + s.down.lowerBound, ldb: hw, c: dsa.pointer, ldc: hw)
        ck_train_silu_backward(a.pointer, dsa.pointer, dsa.pointer, Int64(n * hw))
        // dW1 = da^T u; du = da W1; dg from du through the block's norm (h itself is frozen).
        parallelGemm(pool, transposeA: true, m: hw, n: d, k: n, a: dsa.pointer, lda: hw, b: u.pointer, ldb: d,
                     c: g + s.up.lowerBound, ldc: d)
        parallelGemm(pool, m: n, n: d, k: hw, a: dsa.pointer, lda: hw, b: p + s.up.lowerBound, ldb: d, c: du.pointer, ldc: d)
        (g + s.norm.lowerBound).update(repeating: 0, count: d)
        ck_train_rmsnorm_backward(h, p + s.norm.lowerBound, invRMS.pointer, du.pointer, nil, g + s.norm.lowerBound,
                                  Int64(n), Int64(d))
        if s.hasAdapter {
            // dA = dz^T h; db = column sums of dz (a 1 x n row of ones times dz).
            parallelGemm(pool, transposeA: true, m: d, n: d, k: n, a: dz, lda: d, b: h, ldb: d,
                         c: g + s.adapterMatrix.lowerBound, ldc: d)
            let ones = [Float](repeating: 1, count: n)
            ones.withUnsafeBufferPointer { o in
                parallelGemm(pool, m: 1, n: d, k: n, a: o.baseAddress!, lda: n, b: dz, ldb: d,
                             c: g + s.adapterBias.lowerBound, ldc: d)
            }
        }
    }
}
