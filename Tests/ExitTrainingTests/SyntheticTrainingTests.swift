import CKernels
import LLM
import XCTest

@testable import ExitTraining
@testable import Exits

/// Training on a small problem whose teacher is itself a residual MLP block: the student must
/// learn it from top-k targets, and held-out loss must fall.
final class SyntheticTrainingTests: XCTestCase {
    static let pool = ThreadPool(threadCount: 2)

    /// Teacher targets for `hidden` from a hidden "true" block through the same head.
    func makeSet(hidden: [Float], truth: ExitBlock, head: FrozenHead, topK: Int) throws -> DistillationSet {
        let d = head.width, rows = hidden.count / d
        let z = truth.apply(hidden, pool: Self.pool)
        var y = [Float](repeating: 0, count: z.count)
        ck_train_rmsnorm(z, head.norm, &y, nil, Int64(rows), Int64(d), head.epsilon)
        var logits = [Float](repeating: 0, count: rows * head.vocabularySize)
        ck_sgemm_ref(0, 1, Int64(rows), Int64(head.vocabularySize), Int64(d), y, Int64(d), head.matrix, Int64(d), 0,
                     &logits, Int64(head.vocabularySize))
        let teacher = TeacherTopK.compute(logits: logits.map { $0 * 0.5 }, vocabularySize: head.vocabularySize, k: topK)
        return try DistillationSet(width: d, topK: topK, hidden: hidden, teacherIds: teacher.ids,
                                   teacherProbs: teacher.probabilities,
                                   teacherTop1: (0..<rows).map { teacher.ids[$0 * topK] })
    }

    func problem() throws -> (FrozenHead, train: DistillationSet, validation: DistillationSet, test: DistillationSet) {
        let (d, vocab) = (16, 64)
        var r = TestRandom(5)
        let head = try FrozenHead(norm: r.array(d).map { 1 + 0.2 * $0 }, epsilon: 1e-5, matrix: r.array(vocab * d),
                                  vocabularySize: vocab)
        var truth = try ExitBlock(width: d, hiddenWidth: 24, seed: 6)
        for i in truth.shape.up { truth.parameters[i] *= 2 }
        for i in truth.shape.down { truth.parameters[i] = 1.5 * r.uniform() }
        func rows(_ n: Int) throws -> DistillationSet {
            try makeSet(hidden: r.array(n * d, scale: 1.5), truth: truth, head: head, topK: 8)
        }
        return (head, try rows(768), try rows(128), try rows(256))
    }

    func testTrainingReducesHeldOutLossAndBeatsTheStartingBlock() throws {
        let (head, train, validation, test) = try problem()
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let initial = try ExitBlock(width: 16, hiddenWidth: 32, seed: 7)
        var options = TrainingOptions(maxEpochs: 30, batchSize: 32, learningRate: 1e-2)
        options.patience = 3
        var events = 0
        let result = try trainer.train(initial, on: train, validation: validation, options: options) { p in
            events += 1
            XCTAssertGreaterThanOrEqual(p.etaSeconds, 0)
        }
        let before = try trainer.evaluate(initial, on: test).summary
        let after = try trainer.evaluate(result.block, on: test).summary
        print("synthetic: held-out loss \(before.meanLoss) -> \(after.meanLoss), top-1 \(before.top1Agreement) -> \(after.top1Agreement), \(result.report.epochs.count) epochs, best \(result.report.bestEpoch)")
        XCTAssertLessThan(after.meanLoss, 0.5 * before.meanLoss)
        XCTAssertGreaterThan(after.top1Agreement, before.top1Agreement + 0.2)
        XCTAssertGreaterThan(result.report.bestEpoch, 0)
        XCTAssertGreaterThan(events, result.report.steps)
        // The returned block is the best one on validation.
        let best = result.report.epochs[result.report.bestEpoch - 1].validation!.meanLoss
        XCTAssertEqual(try trainer.evaluate(result.block, on: validation).summary.meanLoss, best, accuracy: 1e-9)
    }

    func testTrainingIsReproducibleFromTheSeed() throws {
        let (head, train, validation, _) = try problem()
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let initial = try ExitBlock(width: 16, hiddenWidth: 32, seed: 7)
        var options = TrainingOptions(maxEpochs: 2, batchSize: 50)
        let a = try trainer.train(initial, on: train, validation: validation, options: options)
        let b = try trainer.train(initial, on: train, validation: validation, options: options)
        XCTAssertEqual(a.block, b.block)
        options.seed = 1
        let c = try trainer.train(initial, on: train, validation: validation, options: options)
        XCTAssertNotEqual(a.block, c.block)
    }

    func testCosineScheduleDecaysTheRateAfterTheFirstEpoch() throws {
        var options = TrainingOptions(maxEpochs: 4, batchSize: 50)
        XCTAssertEqual((1...4).map { options.learningRateScale(epoch: $0) }, [1, 1, 1, 1])
        options.cosineSchedule = true
        let scales = (1...4).map { options.learningRateScale(epoch: $0) }
        XCTAssertEqual(scales[0], 1)
        XCTAssertEqual(scales[2], 0.55, accuracy: 1e-6)
        XCTAssertEqual(scales[3], 0.55 - 0.45 * Float(0.5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(scales, scales.sorted(by: >))

        // The trainer follows it: one epoch runs at the full rate either way; later epochs take smaller steps.
        let (head, train, _, _) = try problem()
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let initial = try ExitBlock(width: 16, hiddenWidth: 32, seed: 7)
        var constant = TrainingOptions(maxEpochs: 1, batchSize: 50)
        constant.patience = 10
        var cosine = constant
        cosine.cosineSchedule = true
        XCTAssertEqual(try trainer.train(initial, on: train, options: constant).block,
                       try trainer.train(initial, on: train, options: cosine).block)
        (constant.maxEpochs, cosine.maxEpochs) = (4, 4)
        let first = try trainer.train(initial, on: train, options: TrainingOptions(maxEpochs: 1, batchSize: 50)).block
        func moved(_ options: TrainingOptions) throws -> Float {
            let last = try trainer.train(initial, on: train, options: options).block
            return zip(last.parameters, first.parameters).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        }
        // Epochs 2-4 at 0.87, 0.55 and 0.23 of the rate move the block well under constant epochs do.
        XCTAssertLessThan(try moved(cosine), 0.8 * (try moved(constant)))
    }

    func testUntrainedBlockIsItsBase() throws {
        var r = TestRandom(9)
        let hidden = r.array(3 * 8)
        let lens = try ExitBlock(width: 8, hiddenWidth: 4, seed: 1)
        XCTAssertEqual(lens.apply(hidden, pool: Self.pool), hidden)
        let a = r.array(64), b = r.array(8)
        let adapted = try ExitBlock(width: 8, hiddenWidth: 4, adapterMatrix: a, adapterBias: b, seed: 1)
        let z = adapted.apply(hidden, pool: Self.pool)
        for row in 0..<3 {
            for i in 0..<8 {
                var s = b[i]
                for j in 0..<8 { s += a[i * 8 + j] * hidden[row * 8 + j] }
                XCTAssertEqual(z[row * 8 + i], s, accuracy: 1e-5)
            }
        }
    }

    func testTeacherIdsOutsideTheVocabularyAreRejected() throws {
        let (head, set) = try randomProblem(width: 8, vocab: 23, rows: 4, topK: 5, seed: 11)
        var ids = set.teacherIds
        ids[7] = 23
        let bad = try DistillationSet(width: 8, topK: 5, hidden: set.hidden, teacherIds: ids, teacherProbs: set.teacherProbs,
                                      teacherTop1: set.teacherTop1)
        let trainer = ExitBlockTrainer(head: head, pool: Self.pool)
        let block = try ExitBlock(width: 8, hiddenWidth: 4)
        XCTAssertThrowsError(try trainer.train(block, on: bad))
        XCTAssertThrowsError(try trainer.evaluate(block, on: bad))
        XCTAssertNoThrow(try trainer.evaluate(block, on: set))
    }
}
