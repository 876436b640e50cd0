import LLM

extension DistillationSet {
    /// Runs the full `model` (embeddings, all layers, head) over `tokens` as one sequence and keeps,
    /// for every position, the hidden state after `exitLayer` layers (the output of layers
    /// [0, exitLayer), as the edge sees it at that exit) and the full model's top-k distribution
    /// there. Tokens are processed in chunks of `chunk` rows to bound the memory of the logits.
    public static func collect(model: LlamaModel, tokens: [Int], exitLayer: Int, topK: Int = 32,
                               chunk: Int = 256) throws -> DistillationSet {
        let layers = model.config.layerCount
        guard model.hasEmbeddings, model.hasHead, model.layers == 0..<layers else {
            throw TrainingError.shapeMismatch("collecting needs the full model (layers 0..<\(layers) with embeddings and head)")
        }
        guard exitLayer > 0, exitLayer < layers else {
            throw TrainingError.shapeMismatch("exit layer \(exitLayer) is not within 1..<\(layers)")
        }
        let vocab = model.config.vocabularySize
        var out = DistillationSet(width: model.config.hiddenSize, topK: topK)
        let cache = model.makeCache(capacity: tokens.count)
        var start = 0
        while start < tokens.count {
            let piece = Array(tokens[start..<min(tokens.count, start + max(1, chunk))])
            var hidden = try model.embed(piece)
            try model.forward(&hidden, cache: cache, only: 0..<exitLayer)
            let atExit = hidden
            try model.forward(&hidden, cache: cache, only: exitLayer..<layers)
            let teacher = TeacherTopK.compute(logits: try model.logits(hidden), vocabularySize: vocab, k: topK)
            let top1 = (0..<piece.count).map { teacher.ids[$0 * topK] }
            try out.append(DistillationSet(width: atExit.width, topK: topK, hidden: atExit.values,
                                           teacherIds: teacher.ids, teacherProbs: teacher.probabilities,
                                           teacherTop1: top1, positions: (start..<start + piece.count).map { Int32($0) }))
            start += piece.count
        }
        return out
    }
}
