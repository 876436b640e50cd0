/// An exit block's predictions and loss on a labelled set, computed with the f32 head.
public struct Evaluation: Sendable {
    /// The aggregate numbers (what training reports per epoch).
    public struct Summary: Sendable, Equatable {
        public var rows: Int
        public var meanLoss: Double
        public var meanKL: Double
        /// Share of rows whose student top-1 equals the teacher's top-1.
        public var top1Agreement: Double
    }

    public var summary: Summary
    /// Per row: the student's top-1 token.
    public var predictions: [Int32]
    /// Per row: the student's max softmax probability (the exit's confidence).
    public var maxProbabilities: [Float]
}
