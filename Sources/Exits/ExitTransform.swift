import LLM

/// Maps an exit layer's hidden states to the head's input (z in head(norm(z))).
public protocol ExitTransform: AnyObject, Sendable {
    func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates
}
