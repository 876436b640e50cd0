import CKernels

/// The distillation objective: klWeight * KL(teacher || student) + crossEntropyWeight * CE(teacher's top-1).
public struct LossOptions: Sendable, Equatable {
    /// How the probability mass outside the teacher's stored top-k enters the KL.
    public enum Tail: Sendable, Equatable {
        /// Default. The mass left out by the teacher's top-k (1 - sum of the k probabilities) and the
        /// student's mass on all other tokens are one extra category each: the exact KL between the
        /// two distributions coarsened to k + 1 outcomes. It keeps the teacher's confidence, which
        /// the exit's max-probability threshold relies on: where the teacher spreads mass over the
        /// tail, the student is not pushed to be sure.
        case bucket
        /// The teacher's top-k renormalised to sum to 1: pushes all student mass onto those k tokens,
        /// so it teaches overconfidence where the teacher's tail is heavy.
        case renormalise
    }

    public var klWeight: Float
    public var crossEntropyWeight: Float
    public var tail: Tail

    public init(klWeight: Float = 1, crossEntropyWeight: Float = 0, tail: Tail = .bucket) {
        self.klWeight = klWeight
        self.crossEntropyWeight = crossEntropyWeight
        self.tail = tail
    }

    var kernelTail: ck_tail_mode { tail == .bucket ? CK_TAIL_BUCKET : CK_TAIL_RENORMALISE }
}
