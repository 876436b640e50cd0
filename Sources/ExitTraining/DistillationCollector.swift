import Exits
import LLM

extension DistillationSet {
    /// Runs the full `model` (embeddings, all layers, head) over `tokens` as one sequence and keeps,
    /// for every position, the hidden state after `exitLayer` layers (the output of layers
    /// [0, exitLayer), as the edge sees it at that exit) and the full model's top-k distribution there.
    public static func collect(model: LlamaModel, tokens: [Int], exitLayer: Int, topK: Int = 32,
                               chunk: Int = 256) throws -> DistillationSet {
        try collect(model: model, tokens: tokens, exitLayers: [exitLayer], topK: topK, chunk: chunk)[0]
    }

    /// As above for several exits from one run of the model: one set per exit layer (in the given
    /// order), sharing the teacher's targets. Tokens go through in chunks of `chunk` rows to bound
    /// the memory of the logits (vocabulary x rows floats).
    public static func collect(model: LlamaModel, tokens: [Int], exitLayers: [Int], topK: Int = 32,
                               chunk: Int = 256) throws -> [DistillationSet] {
        let layers = model.config.layerCount
        guard model.hasEmbeddings, model.hasHead, model.layers == 0..<layers else {
            throw TrainingError.shapeMismatch("collecting needs the full model (layers 0..<\(layers) with embeddings and head)")
        }
        guard exitLayers.allSatisfy({ $0 > 0 && $0 < layers }) else {
            throw TrainingError.shapeMismatch("exit layers \(exitLayers) are not all within 1..<\(layers)")
        }
        let vocab = model.config.vocabularySize
        let stops = Array(Set(exitLayers)).sorted()
        var sets = [Int: DistillationSet]()
        for e in stops { sets[e] = DistillationSet(width: model.config.hiddenSize, topK: topK) }
        let cache = model.makeCache(capacity: tokens.count)
        var start = 0
        while start < tokens.count {
            let piece = Array(tokens[start..<min(tokens.count, start + max(1, chunk))])
            var hidden = try model.embed(piece)
            var states = [Int: HiddenStates]()
            var done = 0
            for e in stops {
                try model.forward(&hidden, cache: cache, only: done..<e)
                states[e] = hidden
                done = e
            }
            try model.forward(&hidden, cache: cache, only: done..<layers)
            let teacher = TeacherTopK.compute(logits: try model.logits(hidden), vocabularySize: vocab, k: topK)
            let top1 = (0..<piece.count).map { teacher.ids[$0 * topK] }
            let positions = (start..<start + piece.count).map { Int32($0) }
            for e in stops {
                try sets[e]!.append(DistillationSet(width: hidden.width, topK: topK, hidden: states[e]!.values,
                                                    teacherIds: teacher.ids, teacherProbs: teacher.probabilities,
                                                    teacherTop1: top1, positions: positions))
            }
            start += piece.count
        }
        return exitLayers.map { sets[$0]! }
    }
}
