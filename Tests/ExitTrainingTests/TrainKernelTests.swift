import CKernels
import XCTest

@testable import ExitTraining

/// The training kernels against their scalar references, on odd sizes that exercise every tail.
final class TrainKernelTests: XCTestCase {
    func testGemmMatchesReferenceForEveryTransposeAndBlock() {
        var r = TestRandom(1)
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (13, 37, 17), (9, 70, 40), (64, 33, 131), (3, 5, 300), (20, 51, 300)] {
            for ta in [0, 1] as [Int32] {
                for tb in [0, 1] as [Int32] {
                    let a = r.array(m * k), b = r.array(k * n)
                    let lda = ta == 1 ? m : k, ldb = tb == 1 ? k : n
                    let c0 = r.array(m * n)
                    for beta: Float in [0, 0.5] {
                        var expected = c0
                        ck_sgemm_ref(ta, tb, Int64(m), Int64(n), Int64(k), a, Int64(lda), b, Int64(ldb), beta, &expected, Int64(n))
                        for isa in testedISAs {
                            var got = c0
                            withISA(isa) {
                                // Two blocks of C, as two threads would compute them.
                                let (mi, nj) = (Int64(m / 2), Int64(n / 3))
                                for (i0, i1, j0, j1) in [(0, mi, 0, Int64(n)), (mi, Int64(m), 0, nj), (mi, Int64(m), nj, Int64(n))] {
                                    ck_sgemm(ta, tb, Int64(m), Int64(n), Int64(k), a, Int64(lda), b, Int64(ldb), beta,
                                             &got, Int64(n), i0, i1, j0, j1)
                                }
                            }
                            let err = maxRelativeError(got, expected)
                            XCTAssertLessThan(err, 1e-5, "m \(m) n \(n) k \(k) ta \(ta) tb \(tb) beta \(beta) isa \(isa)")
                        }
                    }
                }
            }
        }
    }

    func testDistillationLossMatchesReference() {
        var r = TestRandom(2)
        let (vocab, k, rows) = (1000, 32, 5)
        for tail in [CK_TAIL_BUCKET, CK_TAIL_RENORMALISE] {
            for (klw, cew): (Float, Float) in [(1, 0), (0.5, 0.7)] {
                let logits = r.array(rows * vocab, scale: 8)
                var ids = [Int32](), probs = [Float](), top1 = [Int32]()
                var rng = r.rng
                for _ in 0..<rows {
                    let order = ExitBlockTrainer.permutation(vocab, &rng).prefix(k).map { Int32($0) }
                    ids += order
                    probs += (0..<k).map { Float(32 - $0) / 600 }
                    top1.append(order[1])
                }
                var expected = logits, out0 = [ck_distill_row](repeating: ck_distill_row(), count: rows)
                ck_distill_rows_ref(&expected, Int64(vocab), ids, probs, Int64(k), top1, klw, cew, tail, 0.25, &out0, 0, Int64(rows))
                for isa in testedISAs {
                    var got = logits, out1 = [ck_distill_row](repeating: ck_distill_row(), count: rows)
                    withISA(isa) {
                        ck_distill_rows(&got, Int64(vocab), ids, probs, Int64(k), top1, klw, cew, tail, 0.25, &out1, 0, Int64(rows))
                    }
                    XCTAssertLessThan(maxRelativeError(got, expected), 1e-4, "tail \(tail) isa \(isa)")
                    for (x, y) in zip(out1, out0) {
                        XCTAssertEqual(x.loss, y.loss, accuracy: 1e-4 * max(1, abs(y.loss)))
                        XCTAssertEqual(x.kl, y.kl, accuracy: 1e-4 * max(1, abs(y.kl)))
                        XCTAssertEqual(x.max_prob, y.max_prob, accuracy: 1e-6)
                        XCTAssertEqual(x.argmax, y.argmax)
                    }
                }
            }
        }
    }

    func testLossIsZeroWhenStudentEqualsTeacher() {
        // Student logits = log of a distribution; teacher top-k = that distribution's top-k: KL is 0.
        let vocab = 50, k = 8
        let p = (0..<vocab).map { Float(vocab - $0) }.map { $0 / Float(vocab * (vocab + 1) / 2) }
        var logits = p.map { logf($0) }
        let ids = (0..<k).map { Int32($0) }
        let probs = Array(p[0..<k])
        for tail in [CK_TAIL_BUCKET, CK_TAIL_RENORMALISE] {
            var out = [ck_distill_row()]
            var l = logits
            ck_distill_rows(&l, Int64(vocab), ids, probs, Int64(k), [0], 1, 0, tail, 0, &out, 0, 1)
            if tail == CK_TAIL_BUCKET {
                XCTAssertEqual(out[0].kl, 0, accuracy: 1e-5)
            } else {
                XCTAssertGreaterThan(out[0].kl, 0.1, "renormalising charges the student's tail mass")
            }
        }
        logits[0] += 0
    }

    func testTopKSoftmax() {
        let logits: [Float] = [0, 3, 1, 3, -2, 2]
        let (ids, probs) = TeacherTopK.compute(logits: logits, vocabularySize: 6, k: 3)
        XCTAssertEqual(ids, [1, 3, 5])
        let z = logits.map { expf($0) }.reduce(0, +)
        XCTAssertEqual(probs[0], expf(3) / z, accuracy: 1e-6)
        XCTAssertEqual(probs[2], expf(2) / z, accuracy: 1e-6)
    }
}
