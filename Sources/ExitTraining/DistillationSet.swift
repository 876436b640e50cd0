import Exits

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
    /// rows: each row's position in its sequence. A sequence is a run of rows at positions
    /// 0, 1, 2, ...; only transformer exit blocks (which attend over the sequence) use them.
    public private(set) var positions: [Int32]

    public var rows: Int { teacherTop1.count }

    /// `positions` defaults to 0, 1, ..., rows - 1: all rows one sequence, in order.
    public init(width: Int, topK: Int, hidden: [Float], teacherIds: [Int32], teacherProbs: [Float],
                teacherTop1: [Int32], positions: [Int32]? = nil) throws {
        let n = teacherTop1.count
        guard width > 0, topK > 0, hidden.count == n * width, teacherIds.count == n * topK,
              teacherProbs.count == n * topK, positions == nil || positions!.count == n else {
            throw TrainingError.shapeMismatch(
                "\(n) rows need \(n * width) hidden values and \(n * topK) teacher ids/probabilities; got \(hidden.count), \(teacherIds.count), \(teacherProbs.count)")
        }
        self.width = width
        self.topK = topK
        self.hidden = hidden
        self.teacherIds = teacherIds
        self.teacherProbs = teacherProbs
        self.teacherTop1 = teacherTop1
        self.positions = positions ?? (0..<n).map { Int32($0) }
    }

    /// An empty set to append to.
    public init(width: Int, topK: Int) {
        self.width = width
        self.topK = topK
        hidden = []
        teacherIds = []
        teacherProbs = []
        teacherTop1 = []
        positions = []
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
            out.positions.append(positions[r])
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
        positions += other.positions
    }

    /// Row ranges of the sequences: maximal runs of rows at positions 0, 1, 2, ... Throws when a run
    /// does not start at position 0 (a sequence cut off at its start cannot be attended over).
    public func sequences() throws -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        for r in 0..<rows {
            if r > start, positions[r] != positions[r - 1] + 1 {
                out.append(start..<r)
                start = r
            }
            if r == start, positions[r] != 0 {
                throw TrainingError.shapeMismatch("row \(r) starts a sequence at position \(positions[r]), not 0")
            }
        }
        if start < rows { out.append(start..<rows) }
        return out
    }
}
