import Exits
import Foundation
import LLM

/// Runs an exit head (adapter or logit lens) over dataset rows in batches and records, per token,
/// its confidence, whether its top-1 equals the full model's, and its top-1 itself, under an exit rule.
public struct ExitEvaluator {
    public let model: LlamaModel
    public var batchSize = 128
    /// Under `ExitRule.shortlist`: the screen whose tokens the confidence and the top-1 are taken over, from its
    /// own head rows, as an edge computes them (nil: the whole vocabulary).
    public var screen: VocabularyScreen?

    public init(model: LlamaModel, screen: VocabularyScreen? = nil) {
        precondition(model.hasHead, "exit evaluation needs the final norm and head")
        precondition(screen.map { !$0.tokens.isEmpty } ?? true, "an empty shortlist decides nothing")
        self.model = model
        self.screen = screen
    }

    public func evaluate(_ data: ExitDataset, layer: Int, rows: [Int], adapter: (any ExitTransform)?) throws -> (ExitOutcomes, [Int]) {
        try evaluate(data, rows: rows) { chunk in
            let states = data.states(layer: layer, rows: chunk)
            return adapter?.apply(states, pool: model.pool) ?? states
        }
    }

    /// As above with the head's inputs given: `inputs` row j belongs to dataset row `rows[j]`
    /// (e.g. the outputs of an exit block that attends over whole sequences).
    public func evaluate(_ data: ExitDataset, rows: [Int], inputs: HiddenStates) throws -> (ExitOutcomes, [Int]) {
        precondition(inputs.rows == rows.count, "one input row per dataset row")
        var next = 0
        return try evaluate(data, rows: rows) { chunk in
            defer { next += chunk.count }
            return inputs.rows(next..<next + chunk.count)
        }
    }

    private func evaluate(_ data: ExitDataset, rows: [Int], headInputs: ([Int]) throws -> HiddenStates) throws -> (ExitOutcomes, [Int]) {
        var outcomes = ExitOutcomes()
        var predicted: [Int] = []
        let width = screen?.tokens.count ?? model.config.vocabularySize
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            let chunk = Array(rows[start..<min(rows.count, start + batchSize)])
            let inputs = try headInputs(chunk)
            let logits = try screen?.logits(inputs, model: model) ?? model.logits(inputs)
            for (j, row) in chunk.enumerated() {
                var top = topCandidates(Array(logits[j * width..<(j + 1) * width]), k: 1)[0]
                if let screen { top.id = screen.tokens[top.id] }
                outcomes.confidence.append(expf(top.logprob))
                outcomes.agrees.append(top.id == Int(data.top1[row]))
                predicted.append(top.id)
            }
        }
        return (outcomes, predicted)
    }
}
