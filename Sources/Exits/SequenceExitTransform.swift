import LLM

/// An exit transform that attends over the sequence: it must see every position's state at its
/// layer, once and in order, whether or not the exit is asked about that position. The edge
/// reports rows as they reach the layer (`observe`); `applyLast` answers for the last one.
public protocol SequenceExitTransform: ExitTransform {
    /// Rows at positions `position ..< position + rows` reached the exit layer. Positions from
    /// `position` on that were observed before are replaced (a rewound sequence); position 0 starts
    /// a new sequence. A gap (a position after the last observed one) is an error.
    func observe(_ hidden: HiddenStates, at position: Int) throws
    /// The head's input for the last observed position.
    func applyLast() throws -> HiddenStates
    /// Forgets positions from `positions` on (rejected drafts), as the edge's KV cache does.
    func truncate(to positions: Int)
}
