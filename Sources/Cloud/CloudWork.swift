import CollabCore
import Foundation
import LLM

/// One request waiting for the cloud's forward passes: a collab INFER or spec VERIFY, a naive step
/// or a cloud-only generation. The engine asks each piece of work what it still needs, gives it a
/// slice of rows in a pass (several works share every pass) and hands back the logits of its scored
/// rows when the slice completes it.
protocol CloudWork: AnyObject {
    /// True when its rows enter at the token embeddings (cloud-only generation); false when they
    /// are boundary states entering at the split.
    var entersAtEmbeddings: Bool { get }
    /// Set by the engine: the order of arrival, and the last pass that served it (for fairness).
    var arrival: Int { get set }
    var lastServedPass: Int { get set }
    /// True when nobody waits for the answer any more (the client went away).
    var isCancelled: Bool { get }
    /// Validates the work against the manager's current state and says what it needs next.
    func prepare(in manager: ContextManager) throws -> WorkDemand
    /// The input of its next `rows` rows.
    func input(rows: Int, in manager: ContextManager) throws -> PassInput
    /// Records that its next `rows` rows were computed. A final slice carries the logits of its
    /// scored rows (`demand.scored` rows of vocabulary size). Returns true when the work is done.
    func advance(rows: Int, final: Bool, logits: ArraySlice<Float>, pass: PassReport, in manager: ContextManager) -> Bool
    /// Ends the work with an error (its caller is told).
    func fail(_ error: CollabError)
}

extension CloudWork {
    // Split work (INFER, VERIFY, naive) enters at the split.
    var entersAtEmbeddings: Bool { false }
}

/// What a piece of work needs from the passes to come.
struct WorkDemand {
    /// The cache its rows extend, and the position its next row takes.
    var cache: KVCache
    var position: Int
    /// Rows still to compute before its answer.
    var remaining: Int
    /// How many of the last rows need logits (1, or 1 + draft tokens for a VERIFY); they run in one slice.
    var scored: Int
}

enum PassInput {
    case tokens([Int])
    case states(HiddenStates)
}

/// What one forward pass did, for accounting.
struct PassReport {
    var rows: Int
    var works: Int
    var seconds: Double
}

extension CollabError {
    /// A CollabError as it is; anything else as an invalid argument with its description.
    init(wrapping error: Error) {
        self = (error as? CollabError) ?? CollabError(.invalidArgument, "\(error)")
    }
}
