/// Training rows for an exit: the hidden state after the exit layer and what the full model
/// predicted there. The teacher keeps only its top-k probabilities (k = 32 keeps a token's target at
/// 256 bytes instead of a 196 KB distribution) plus its top-1 token.
public struct DistillationSet: Sendable, Equatable {
    public let width: Int
    public let topK: Int
    /// rows x width: the residual stream after the exit layer (before any norm).
    public private(set) var hidden: [Float]
    /// rows x topK: the full model's most probable tokens (distinct within a row).
    public private(set) var teacherIds: [Int32]
    /// rows x topK: their softmax probabilities under the full model (sum <= 1).
    public private(set) var teacherProbs: [Float]
    /// rows: the full model's top-1 token (the target of the optional cross-entropy).
    public private(set) var teacherTop1: [Int32]

    public var rows: Int { teacherTop1.count }

    public init(width: Int, topK: Int, hidden: [Float], teacherIds: [Int32], teacherProbs: [Float],
                teacherTop1: [Int32]) throws {
        let n = teacherTop1.count
        guard width > 0, topK > 0, hidden.count == n * width, teacherIds.count == n * topK,
              teacherProbs.count == n * topK else {
            throw TrainingError.shapeMismatch(
                "\(n) rows need \(n * width) hidden values and \(n * topK) teacher ids/probabilities; got \(hidden.count), \(teacherIds.count), \(teacherProbs.count)")
        }
        self.width = width
        self.topK = topK
        self.hidden = hidden
        self.teacherIds = teacherIds
        self.teacherProbs = teacherProbs
        self.teacherTop1 = teacherTop1
    }

    /// An empty set to append to.
    public init(width: Int, topK: Int) {
        self.width = width
        self.topK = topK
        hidden = []
        teacherIds = []
        teacherProbs = []
        teacherTop1 = []
    }

    /// The given rows, in that order.
    public func subset(_ indices: [Int]) -> DistillationSet {
        var out = DistillationSet(width: width, topK: topK)
        out.hidden.reserveCapacity(indices.count * width)
        for r in indices {
            out.hidden.append(contentsOf: hidden[r * width..<(r + 1) * width])
            out.teacherIds.append(contentsOf: teacherIds[r * topK..<(r + 1) * topK])
            out.teacherProbs.append(contentsOf: teacherProbs[r * topK..<(r + 1) * topK])
            out.teacherTop1.append(teacherTop1[r])
        }
        return out
    }

    public mutating func append(_ other: DistillationSet) throws {
        guard other.width == width, other.topK == topK else {
            throw TrainingError.shapeMismatch("cannot append width \(other.width) top-\(other.topK) rows to width \(width) top-\(topK)")
        }
        hidden += other.hidden
        teacherIds += other.teacherIds
        teacherProbs += other.teacherProbs
        teacherTop1 += other.teacherTop1
    }
}
