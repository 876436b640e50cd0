import Foundation
import CollabCore
import LLM

/// Runs an exit head (adapter or logit lens) over dataset rows in batches and records, per token,
/// its confidence, whether its top-1 equals the full model's, and its top-1 itself.
public struct ExitEvaluator {
    public let model: LlamaModel
    public var batchSize = 128

    public init(model: LlamaModel) {
        precondition(model.hasHead, "exit evaluation needs the final norm and head")
        self.model = model
    }

    public func evaluate(_ data: ExitDataset, layer: Int, rows: [Int], adapter: (any ExitTransform)?) throws -> (ExitOutcomes, [Int]) {
        var outcomes = ExitOutcomes()
        var predicted: [Int] = []
        let vocab = model.config.vocabularySize
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            let chunk = Array(rows[start..<min(rows.count, start + batchSize)])
            var states = data.states(layer: layer, rows: chunk)
            if let adapter { states = adapter.apply(states, pool: model.pool) }
            let logits = try model.logits(states)
            for (j, row) in chunk.enumerated() {
                let slice = Array(logits[j * vocab..<(j + 1) * vocab])
                let top = topCandidates(slice, k: 1)[0]
                outcomes.confidence.append(expf(top.logprob))
                outcomes.agrees.append(top.id == Int(data.top1[row]))
                predicted.append(top.id)
            }
        }
        return (outcomes, predicted)
    }
}
