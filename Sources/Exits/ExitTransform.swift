import LLM

/// Maps an exit layer's hidden states to the head's input (z in head(norm(z))).
public protocol ExitTransform: AnyObject, Sendable {
    func apply(_ hidden: HiddenStates, pool: ThreadPool) -> HiddenStates
    /// Bytes of weights one application reads: in decoding, the layers between two checks evict them, so
    /// this is what the exit costs against a layer's weights.
    var weightBytes: Int { get }
}
