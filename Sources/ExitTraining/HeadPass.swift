import CKernels
import Exits
import LLM

/// The frozen final norm + LM head and the distillation loss over up to `capacity` rows:
/// logits = E rmsnorm_final(z), the loss against the teacher, and d loss / d z (through the head
/// and the norm; the head itself gets no gradient). The two head products dominate a training step.
final class HeadPass: @unchecked Sendable {
    let head: FrozenHead
    let capacity: Int
    private let y, invRMS, logits, dy: FloatBuffer
    private let gradient: FloatBuffer
    private var results: [ck_distill_row]

    /// d loss / d z of the last `run(..., withGradient: true)` (rows x width).
    var dz: UnsafeMutablePointer<Float> { gradient.pointer }

    init(head: FrozenHead, rows: Int) {
        self.head = head
        capacity = max(rows, 1)
        y = FloatBuffer(capacity * head.width)
        invRMS = FloatBuffer(capacity)
        logits = FloatBuffer(capacity * head.vocabularySize)
        dy = FloatBuffer(capacity * head.width)
        gradient = FloatBuffer(capacity * head.width)
        results = [ck_distill_row](repeating: ck_distill_row(), count: capacity)
    }

    /// Per-row losses and student predictions for rows [first, first + n) of `targets`; with
    /// `withGradient`, also dz for the mean loss over the n rows.
    func run(z: UnsafePointer<Float>, rows n: Int, targets: DistillationSet, first: Int, options: LossOptions,
             withGradient: Bool, pool: ThreadPool) -> ArraySlice<ck_distill_row> {
        precondition(n <= capacity && first + n <= targets.rows)
        let (d, vocab, k) = (head.width, head.vocabularySize, targets.topK)
        head.norm.withUnsafeBufferPointer { gf in
            ck_train_rmsnorm(z, gf.baseAddress!, y.pointer, invRMS.pointer, Int64(n), Int64(d), head.epsilon)
        }
        head.matrix.withUnsafeBufferPointer { e in
            parallelGemm(pool, transposeB: true, m: n, n: vocab, k: d, a: y.pointer, lda: d, b: e.baseAddress!, ldb: d,
                         c: logits.pointer, ldc: vocab)
        }
        let scale: Float = withGradient ? 1 / Float(n) : 0
        let (logitsPointer, tail) = (logits.pointer, options.kernelTail)
        results.withUnsafeMutableBufferPointer { out in
            let outPointer = out.baseAddress!
            targets.teacherIds.withUnsafeBufferPointer { ids in
                targets.teacherProbs.withUnsafeBufferPointer { probs in
                    targets.teacherTop1.withUnsafeBufferPointer { top1 in
                        let (i, p, t) = (ids.baseAddress! + first * k, probs.baseAddress! + first * k, top1.baseAddress! + first)
                        pool.parallelRanges(total: n) { r in
                            ck_distill_rows(logitsPointer, Int64(vocab), i, p, Int64(k), t, options.klWeight,
                                            options.crossEntropyWeight, tail, scale, outPointer,
                                            Int64(r.lowerBound), Int64(r.upperBound))
                        }
                    }
                }
            }
        }
        if withGradient {
            head.matrix.withUnsafeBufferPointer { e in
                parallelGemm(pool, m: n, n: d, k: vocab, a: logits.pointer, lda: vocab, b: e.baseAddress!, ldb: d,
                             c: dy.pointer, ldc: d)
            }
            head.norm.withUnsafeBufferPointer { gf in
                ck_train_rmsnorm_backward(z, gf.baseAddress!, invRMS.pointer, dy.pointer, gradient.pointer, nil,
                                          Int64(n), Int64(d))
            }
        }
        return results[0..<n]
    }
}
