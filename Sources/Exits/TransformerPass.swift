import CKernels
import LLM

/// Forward and backward of a transformer-layer exit block over rows made of whole sequences
/// (segments), keeping what the backward pass needs: the normed inputs, Q/K/V after rotary
/// embedding, every head's attention probabilities, the FFN's pre-activations.
/// The backward pass assumes the forward attended within each segment only (training); inference
/// reads keys and values from a cache through `Attention` instead.
package final class TransformerPass: @unchecked Sendable {
    /// Where one segment's rows find their keys and values: rows [rows) at positions pos0 ..< pos0 + count,
    /// attending to positions 0 ..< pos0 + count of `keys` / `values` (row stride `stride`).
    struct Attention {
        let rows: Range<Int>
        let pos0: Int
        let keys: UnsafePointer<Float>
        let values: UnsafePointer<Float>
        let stride: Int
        var span: Int { pos0 + rows.count }
    }

    package let shape: TransformerExitShape
    package let capacity: Int
    private let xn, inv1, qkv, att, x2, xn2, inv2, gu, act, output: FloatBuffer
    private let dAct, dgu, dxn, dx2, dAtt, dqkv: FloatBuffer
    private let probabilities = GrowableBuffer()
    private let dScores = GrowableBuffer()
    private var lastAttention: [Attention] = []
    private var probabilityOffsets: [Int] = []

    package var z: UnsafeMutablePointer<Float> { output.pointer }
    /// Rows x qkvWidth: each row's Q, K (both after rotary embedding) and V of the last forward.
    package var qkvRows: UnsafeMutablePointer<Float> { qkv.pointer }

    package init(shape: TransformerExitShape, rows: Int) {
        self.shape = shape
        capacity = max(rows, 1)
        let (n, d, f) = (capacity, shape.width, shape.feedForwardWidth)
        xn = FloatBuffer(n * d)
        inv1 = FloatBuffer(n)
        qkv = FloatBuffer(n * shape.qkvWidth)
        att = FloatBuffer(n * shape.queryDim)
        x2 = FloatBuffer(n * d)
        xn2 = FloatBuffer(n * d)
        inv2 = FloatBuffer(n)
        gu = FloatBuffer(n * 2 * f)
        act = FloatBuffer(n * f)
        output = FloatBuffer(n * d)
        dAct = FloatBuffer(n * f)
        dgu = FloatBuffer(n * 2 * f)
        dxn = FloatBuffer(n * d)
        dx2 = FloatBuffer(n * d)
        dAtt = FloatBuffer(n * shape.queryDim)
        dqkv = FloatBuffer(n * shape.qkvWidth)
    }

    /// Training forward: each segment is a whole sequence from position 0, attending to itself.
    package func forward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, segments: [Range<Int>],
                 pool: ThreadPool) {
        let w = shape.qkvWidth
        forward(parameters: p, hidden: h, rows: segments.last?.upperBound ?? 0, positions: segments.map { ($0, 0) },
                pool: pool) { qkv in
            segments.map { s in
                Attention(rows: s, pos0: 0, keys: qkv + s.lowerBound * w + shape.queryDim,
                          values: qkv + s.lowerBound * w + shape.queryDim + shape.kvDim, stride: w)
            }
        }
    }

    /// Forward over `rows` rows; `positions` gives each run of rows its first position (for rotary
    /// embedding). `attention` is called once Q/K/V exist and are rotated, and says where each
    /// segment's keys and values live; a cache copies the new rows' K and V there first.
    func forward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, rows n: Int,
                 positions: [(rows: Range<Int>, pos0: Int)], pool: ThreadPool,
                 attention: (UnsafeMutablePointer<Float>) -> [Attention]) {
        precondition(n <= capacity)
        let s = shape
        let (d, w, qd, f) = (s.width, s.qkvWidth, s.queryDim, s.feedForwardWidth)
        ck_train_rmsnorm(h, p + s.attentionNorm.lowerBound, xn.pointer, inv1.pointer, Int64(n), Int64(d), s.epsilon)
        parallelGemm(pool, transposeB: true, m: n, n: w, k: d, a: xn.pointer, lda: d, b: p + s.qkv.lowerBound, ldb: d,
                     c: qkv.pointer, ldc: w)
        let neox: Int32 = s.ropeHalves ? 1 : 0
        for run in positions {
            let rows = qkv.pointer + run.rows.lowerBound * w
            ck_train_rope(rows, Int64(run.rows.count), Int64(s.headCount), Int64(s.headDim), Int64(w), Int64(run.pos0),
                          s.ropeBase, neox, 0)
            ck_train_rope(rows + qd, Int64(run.rows.count), Int64(s.kvHeadCount), Int64(s.headDim), Int64(w),
                          Int64(run.pos0), s.ropeBase, neox, 0)
        }
        let segments = attention(qkv.pointer)
        lastAttention = segments
        probabilityOffsets = []
        var total = 0
        for a in segments {
            probabilityOffsets.append(total)
            total += s.headCount * a.rows.count * a.span
        }
        let probs = probabilities.reserve(total)
        for (index, a) in segments.enumerated() {
            attend(a, probabilities: probs + probabilityOffsets[index], pool: pool)
        }
        parallelGemm(pool, transposeB: true, m: n, n: d, k: qd, a: att.pointer, lda: qd, b: p + s.output.lowerBound,
                     ldb: qd, c: x2.pointer, ldc: d)
        ck_add(x2.pointer, h, Int64(n * d))
        ck_train_rmsnorm(x2.pointer, p + s.ffnNorm.lowerBound, xn2.pointer, inv2.pointer, Int64(n), Int64(d), s.epsilon)
        parallelGemm(pool, transposeB: true, m: n, n: 2 * f, k: d, a: xn2.pointer, lda: d, b: p + s.gateUp.lowerBound,
                     ldb: d, c: gu.pointer, ldc: 2 * f)
        ck_train_swiglu(gu.pointer, act.pointer, Int64(n), Int64(f))
        parallelGemm(pool, transposeB: true, m: n, n: d, k: f, a: act.pointer, lda: f, b: p + s.down.lowerBound,
                     ldb: f, c: output.pointer, ldc: d)
        ck_add(output.pointer, x2.pointer, Int64(n * d))
    }

    /// Per head of the segment: scores, causal softmax, and the weighted sum of values into `att`.
    private func attend(_ a: Attention, probabilities probs: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let s = shape
        let (w, qd, hd) = (s.qkvWidth, s.queryDim, s.headDim)
        let rows = qkv.pointer + a.rows.lowerBound * w
        let (m, span) = (a.rows.count, a.span)
        let scale = 1 / Float(hd).squareRoot()
        for head in 0..<s.headCount {
            let g = head / (s.headCount / s.kvHeadCount)
            let ph = probs + head * m * span
            parallelGemm(pool, transposeB: true, m: m, n: span, k: hd, a: rows + head * hd, lda: w,
                         b: a.keys + g * hd, ldb: a.stride, c: ph, ldc: span)
            ck_train_causal_softmax(ph, Int64(m), Int64(span), Int64(a.pos0), scale)
            parallelGemm(pool, m: m, n: hd, k: span, a: ph, lda: span, b: a.values + g * hd, ldb: a.stride,
                         c: att.pointer + a.rows.lowerBound * qd + head * hd, ldc: qd)
        }
    }

    /// Overwrites `gradient` (flat layout) with d loss / d parameters from dz, for the rows and
    /// segments of the last training forward; and `inputGradient`, when given, with d loss / d hidden
    /// (what a block stacked below this one trains on).
    package func backward(parameters p: UnsafePointer<Float>, hidden h: UnsafePointer<Float>, dz: UnsafePointer<Float>,
                  rows n: Int, gradient g: UnsafeMutablePointer<Float>, inputGradient dh: UnsafeMutablePointer<Float>?,
                  pool: ThreadPool) {
        let s = shape
        let (d, w, qd, kvd, f, hd) = (s.width, s.qkvWidth, s.queryDim, s.kvDim, s.feedForwardWidth, s.headDim)
        // FFN: z = x2 + Wdown swiglu(Wgu rmsnorm(x2)).
        parallelGemm(pool, m: n, n: f, k: d, a: dz, lda: d, b: p + s.down.lowerBound, ldb: f, c: dAct.pointer, ldc: f)
        parallelGemm(pool, transposeA: true, m: d, n: f, k: n, a: dz, lda: d, b: act.pointer, ldb: f,
                     c: g + s.down.lowerBound, ldc: f)
        ck_train_swiglu_backward(gu.pointer, dAct.pointer, dgu.pointer, Int64(n), Int64(f))
        parallelGemm(pool, transposeA: true, m: 2 * f, n: d, k: n, a: dgu.pointer, lda: 2 * f, b: xn2.pointer, ldb: d,
                     c: g + s.gateUp.lowerBound, ldc: d)
        parallelGemm(pool, m: n, n: d, k: 2 * f, a: dgu.pointer, lda: 2 * f, b: p + s.gateUp.lowerBound, ldb: d,
                     c: dxn.pointer, ldc: d)
        (g + s.ffnNorm.lowerBound).update(repeating: 0, count: d)
        ck_train_rmsnorm_backward(x2.pointer, p + s.ffnNorm.lowerBound, inv2.pointer, dxn.pointer, dx2.pointer,
                                  g + s.ffnNorm.lowerBound, Int64(n), Int64(d))
        ck_add(dx2.pointer, dz, Int64(n * d))
        // Attention output projection.
        parallelGemm(pool, m: n, n: qd, k: d, a: dx2.pointer, lda: d, b: p + s.output.lowerBound, ldb: qd,
                     c: dAtt.pointer, ldc: qd)
        parallelGemm(pool, transposeA: true, m: d, n: qd, k: n, a: dx2.pointer, lda: d, b: att.pointer, ldb: qd,
                     c: g + s.output.lowerBound, ldc: qd)
        // Per segment and head: through softmax(Q K^T / sqrt(hd)) V; K and V gradients sum over
        // the query heads sharing them.
        dqkv.pointer.update(repeating: 0, count: n * w)
        let scale = 1 / Float(hd).squareRoot()
        let neox: Int32 = s.ropeHalves ? 1 : 0
        for (index, a) in lastAttention.enumerated() {
            let (m, span, r0) = (a.rows.count, a.span, a.rows.lowerBound)
            precondition(a.pos0 == 0 && span == m, "backward needs segments that attend within themselves")
            let probs = probabilities.pointer + probabilityOffsets[index]
            let ds = dScores.reserve(m * span)
            let rows = qkv.pointer + r0 * w, drows = dqkv.pointer + r0 * w
            for head in 0..<s.headCount {
                let kv = head / (s.headCount / s.kvHeadCount)
                let ph = probs + head * m * span
                let dOut = dAtt.pointer + r0 * qd + head * hd
                parallelGemm(pool, transposeB: true, m: m, n: span, k: hd, a: dOut, lda: qd,
                             b: rows + qd + kvd + kv * hd, ldb: w, c: ds, ldc: span)
                ck_train_causal_softmax_backward(ph, ds, Int64(m), Int64(span), 0, scale)
                parallelGemm(pool, m: m, n: hd, k: span, a: ds, lda: span, b: rows + qd + kv * hd, ldb: w,
                             c: drows + head * hd, ldc: w)
                parallelGemm(pool, transposeA: true, m: span, n: hd, k: m, a: ds, lda: span, b: rows + head * hd,
                             ldb: w, beta: 1, c: drows + qd + kv * hd, ldc: w)
                parallelGemm(pool, transposeA: true, m: span, n: hd, k: m, a: ph, lda: span, b: dOut, ldb: qd,
                             beta: 1, c: drows + qd + kvd + kv * hd, ldc: w)
            }
            // Q and K were rotated after the product: rotate their gradients back.
            ck_train_rope(drows, Int64(m), Int64(s.headCount), Int64(hd), Int64(w), 0, s.ropeBase, neox, 1)
            ck_train_rope(drows + qd, Int64(m), Int64(s.kvHeadCount), Int64(hd), Int64(w), 0, s.ropeBase, neox, 1)
        }
        parallelGemm(pool, transposeA: true, m: w, n: d, k: n, a: dqkv.pointer, lda: w, b: xn.pointer, ldb: d,
                     c: g + s.qkv.lowerBound, ldc: d)
        parallelGemm(pool, m: n, n: d, k: w, a: dqkv.pointer, lda: w, b: p + s.qkv.lowerBound, ldb: d,
                     c: dxn.pointer, ldc: d)
        (g + s.attentionNorm.lowerBound).update(repeating: 0, count: d)
        ck_train_rmsnorm_backward(h, p + s.attentionNorm.lowerBound, inv1.pointer, dxn.pointer, dh,
                                  g + s.attentionNorm.lowerBound, Int64(n), Int64(d))
        // x2 = h + attention(rmsnorm(h)): the residual carries dx2 straight through.
        if let dh { ck_add(dh, dx2.pointer, Int64(n * d)) }
    }
}
