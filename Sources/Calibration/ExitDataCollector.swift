import Foundation
import LLM

/// One calibration prompt: already rendered text (chat-templated or raw continuation).
public struct CalibrationPrompt: Sendable {
    public var text: String
    public var parseSpecial: Bool
    /// Answers to this prompt (nil: the collector's `samplesPerPrompt`).
    public var answers: Int?

    public init(text: String, parseSpecial: Bool, answers: Int? = nil) {
        self.text = text
        self.parseSpecial = parseSpecial
        self.answers = answers
    }
}

/// Runs the full model greedily over prompts, several sequences per forward pass, and records the
/// states at the exit layers of every generated position (the last prompt position included: it
/// decides the first answer token). The states are exactly those the edge sees when decoding.
public final class ExitDataCollector {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let exitLayers: [Int]
    public var maxTokens = 48
    public var batchSize = 16
    public var teacherK = 32
    /// Answers per prompt: the first greedy, the others sampled (more, varied data for trained
    /// exits; every position's teacher is still the full model's own distribution there).
    public var samplesPerPrompt = 1
    public var temperature: Float = 0.8
    public var seed: UInt64 = 7

    public init(model: LlamaModel, tokenizer: Tokenizer, exitLayers: [Int]) {
        precondition(model.hasEmbeddings && model.hasHead && model.layers == 0..<model.config.layerCount, "needs the full model")
        self.model = model
        self.tokenizer = tokenizer
        self.exitLayers = Array(Set(exitLayers)).sorted()
    }

    private struct Sequence {
        let prompt: Int
        /// Index in the dataset's `sequences`.
        let id: Int
        let cache: KVCache
        var next: Int
        var generated = 0
        /// nil: greedy; else draws from the teacher's top-k at `temperature`.
        var rng: Xoshiro256StarStar?
    }

    /// `progress(done prompts, total, positions so far)`.
    public func collect(_ prompts: [CalibrationPrompt], progress: (Int, Int, Int) -> Void = { _, _, _ in }) throws -> ExitDataset {
        var data = ExitDataset(width: model.config.hiddenSize, exitLayers: exitLayers, teacherK: teacherK)
        var pending = prompts.enumerated().flatMap { item in (0..<max(1, item.element.answers ?? samplesPerPrompt)).map { (item.offset, item.element, $0) } }
            .reversed().map { $0 }
        let total = pending.count
        var active: [Sequence] = []
        var done = 0
        while !pending.isEmpty || !active.isEmpty {
            // Refill: prefill new prompts one at a time (they differ in length), recording their last row.
            while active.count < batchSize, let (index, prompt, sample) = pending.popLast() {
                let ids = tokenizer.encode(prompt.text, addSpecial: true, parseSpecial: prompt.parseSpecial)
                guard !ids.isEmpty else { done += 1; continue }
                let cache = model.makeCache(capacity: ids.count + maxTokens + 1)
                let id = data.beginSequence(ids)
                let tokens = try step(model.embed(ids), batch: [BatchSegment(cache: cache, position: 0, count: ids.count)],
                                      recordRows: [ids.count - 1], prompts: [index], sequences: [(id, ids.count - 1)], into: &data)
                let rng = sample == 0 ? nil : Xoshiro256StarStar(seed: seed &+ UInt64(index) &* 1_000_003 &+ UInt64(sample))
                var sequence = Sequence(prompt: index, id: id, cache: cache, next: tokens[0], rng: rng)
                sequence.next = choose(greedy: tokens[0], row: data.count - 1, data: data, rng: &sequence.rng)
                active.append(sequence)
            }
            // Drop finished sequences, then decode one token for every remaining one in one pass.
            active.removeAll { sequence in
                let finished = tokenizer.isEndOfGeneration(sequence.next) || sequence.generated >= maxTokens
                if finished { done += 1 }
                return finished
            }
            progress(done, total, data.count)
            guard !active.isEmpty else { continue }
            let batch = active.map { BatchSegment(cache: $0.cache, position: $0.cache.count, count: 1) }
            for sequence in active { data.extend(sequence: sequence.id, with: sequence.next) }
            let tokens = try step(model.embed(active.map(\.next)), batch: batch, recordRows: Array(active.indices),
                                  prompts: active.map(\.prompt), sequences: active.map { ($0.id, $0.cache.count) }, into: &data)
            let firstRow = data.count - active.count
            for i in active.indices {
                active[i].next = choose(greedy: tokens[i], row: firstRow + i, data: data, rng: &active[i].rng)
                active[i].generated += 1
            }
        }
        progress(done, total, data.count)
        return data
    }

    /// The next token: greedy, or a draw from the recorded teacher top-k sharpened by the temperature.
    private func choose(greedy: Int, row: Int, data: ExitDataset, rng: inout Xoshiro256StarStar?) -> Int {
        guard var generator = rng else { return greedy }
        defer { rng = generator }
        let k = data.teacherK
        let weights = data.teacherProbabilities[row * k..<(row + 1) * k].map { powf(max($0, 0), 1 / temperature) }
        let total = weights.reduce(0, +)
        guard total > 0 else { return greedy }
        var u = Float(generator.next() >> 40) / Float(1 << 24) * total
        for (j, w) in weights.enumerated() {
            u -= w
            if u <= 0 { return Int(data.teacherIds[row * k + j]) }
        }
        return greedy
    }

    /// One forward pass through every layer, stopping at each exit layer to copy the recorded rows;
    /// returns the greedy next token of each recorded row.
    private func step(_ embedded: HiddenStates, batch: [BatchSegment], recordRows: [Int], prompts: [Int],
                      sequences: [(id: Int, position: Int)], into data: inout ExitDataset) throws -> [Int] {
        var hidden = embedded
        var depth = 0
        var snapshots: [Int: [Float]] = [:]
        for checkpoint in exitLayers + [model.config.layerCount] where checkpoint > depth {
            try model.forward(&hidden, batch: batch, only: depth..<checkpoint)
            depth = checkpoint
            if checkpoint < model.config.layerCount {
                snapshots[checkpoint] = recordRows.flatMap { hidden.row($0) }
            }
        }
        let width = model.config.hiddenSize, vocab = model.config.vocabularySize
        let logits = try model.logits(hidden, rows: recordRows)
        var next: [Int] = []
        for (j, row) in recordRows.enumerated() {
            let rowLogits = logits[j * vocab..<(j + 1) * vocab]
            data.append(exitStates: snapshots.mapValues { $0[j * width..<(j + 1) * width] }, final: hidden.row(row),
                        logits: rowLogits, prompt: prompts[j], sequence: sequences[j].id, position: sequences[j].position)
            next.append(Int(data.top1.last!))
        }
        return next
    }
}
