import Exits
import Foundation
import LLM

/// Runs an exit head (adapter or logit lens) over dataset rows in batches and records, per token,
/// its confidence, whether its top-1 equals the full model's, and its top-1 itself, under an exit rule.
public struct ExitEvaluator {
    public let model: LlamaModel
    public var batchSize = 128
    /// Under `ExitRule.shortlist`: the tokens the confidence and the top-1 are taken over (nil: the whole vocabulary).
    public var shortlist: [Int]?

    public init(model: LlamaModel, shortlist: [Int]? = nil) {
        precondition(model.hasHead, "exit evaluation needs the final norm and head")
        precondition(shortlist.map { !$0.isEmpty } ?? true, "an empty shortlist decides nothing")
        self.model = model
        self.shortlist = shortlist
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
        let vocab = model.config.vocabularySize
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            let chunk = Array(rows[start..<min(rows.count, start + batchSize)])
            let logits = try model.logits(try headInputs(chunk))
            for (j, row) in chunk.enumerated() {
                let slice = shortlist.map { $0.map { logits[j * vocab + $0] } } ?? Array(logits[j * vocab..<(j + 1) * vocab])
                var top = topCandidates(slice, k: 1)[0]
                if let shortlist { top.id = shortlist[top.id] }
                outcomes.confidence.append(expf(top.logprob))
                outcomes.agrees.append(top.id == Int(data.top1[row]))
                predicted.append(top.id)
            }
        }
        return (outcomes, predicted)
    }
}
