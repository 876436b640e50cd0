import ExitTraining
import Foundation
import LLM

/// What calibration learns from: for every generated position of the full model, the hidden state
/// after each exit layer, the final hidden state (normalised to unit RMS, the regression target),
/// the full model's top-1 and its top-k distribution (for distillation), and which prompt it came
/// from (data is split by prompt, never by token). Columnar, row-major `count x width` arrays.
/// Each row also names its sequence (one answer to one prompt) and position there, and every
/// sequence's tokens are kept, so exit blocks that attend over the sequence can be trained on it.
public struct ExitDataset: Sendable {
    public let width: Int
    public let exitLayers: [Int]
    public let teacherK: Int
    public internal(set) var states: [Int: [Float]]
    public internal(set) var target: [Float] = []
    public internal(set) var top1: [Int32] = []
    public internal(set) var teacherIds: [Int32] = []
    public internal(set) var teacherProbabilities: [Float] = []
    public internal(set) var prompt: [Int32] = []
    /// Row -> index in `sequences`, and the row's position in that sequence.
    public internal(set) var sequence: [Int32] = []
    public internal(set) var position: [Int32] = []
    /// Every sequence's tokens (prompt and the answer tokens fed back).
    public internal(set) var sequences: [[Int32]] = []

    public init(width: Int, exitLayers: [Int], teacherK: Int) {
        self.width = width
        self.exitLayers = exitLayers
        self.teacherK = teacherK
        states = Dictionary(uniqueKeysWithValues: exitLayers.map { ($0, []) })
    }

    public var count: Int { top1.count }

    /// Rows `indices` of the states after `layer`, as hidden states.
    public func states(layer: Int, rows indices: [Int]) -> HiddenStates {
        let all = states[layer]!
        var out = [Float]()
        out.reserveCapacity(indices.count * width)
        for i in indices { out += all[i * width..<(i + 1) * width] }
        return HiddenStates(values: out, width: width)
    }

    public func rows(of values: [Float], _ indices: [Int]) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(indices.count * width)
        for i in indices { out += values[i * width..<(i + 1) * width] }
        return out
    }

    /// Rows `indices` at exit `layer` with their teacher distributions, as training data for exit blocks.
    public func distillationSet(layer: Int, rows indices: [Int]) throws -> DistillationSet {
        let k = teacherK
        return try DistillationSet(width: width, topK: k, hidden: rows(of: states[layer]!, indices),
                                   teacherIds: indices.flatMap { teacherIds[$0 * k..<($0 + 1) * k] },
                                   teacherProbs: indices.flatMap { teacherProbabilities[$0 * k..<($0 + 1) * k] },
                                   teacherTop1: indices.map { top1[$0] })
    }

    /// Positions from prompts in `prompts`.
    public func indices(ofPrompts prompts: Set<Int>) -> [Int] {
        prompt.indices.filter { prompts.contains(Int(prompt[$0])) }
    }

    /// Starts a sequence with its prompt tokens; returns its index.
    mutating func beginSequence(_ tokens: [Int]) -> Int {
        sequences.append(tokens.map(Int32.init))
        return sequences.count - 1
    }

    /// A token fed back into sequence `index`.
    mutating func extend(sequence index: Int, with token: Int) { sequences[index].append(Int32(token)) }

    mutating func append(exitStates: [Int: ArraySlice<Float>], final: ArraySlice<Float>, logits: ArraySlice<Float>, prompt index: Int,
                         sequence: Int, position: Int) {
        for layer in exitLayers { states[layer]! += exitStates[layer]! }
        var sumSquares: Float = 0
        for v in final { sumSquares += v * v }
        let scale = 1 / (sumSquares / Float(width)).squareRoot()
        target += final.map { $0 * scale }
        let top = logits.withContiguousStorageIfAvailable { topCandidates($0, k: teacherK) }!
        top1.append(Int32(top[0].id))
        teacherIds += top.map { Int32($0.id) }
        teacherProbabilities += top.map { expf($0.logprob) }
        prompt.append(Int32(index))
        self.sequence.append(Int32(sequence))
        self.position.append(Int32(position))
    }
}

// MARK: - Cache file (safetensors)

extension ExitDataset {
    public func write(to path: String, metadata: [String: String]) throws {
        var file = SafetensorsFile()
        file.metadata = metadata
        file.metadata["collm.exit_dataset"] = "v2"
        file.metadata["teacher_k"] = String(teacherK)
        for (layer, values) in states { file.tensors["states.\(layer)"] = .init(floats: values, shape: [count, width]) }
        file.tensors["target"] = .init(floats: target, shape: [count, width])
        file.tensors["top1"] = .init(ints: top1, shape: [count])
        file.tensors["teacher.ids"] = .init(ints: teacherIds, shape: [count, teacherK])
        file.tensors["teacher.probs"] = .init(floats: teacherProbabilities, shape: [count, teacherK])
        file.tensors["prompt"] = .init(ints: prompt, shape: [count])
        file.tensors["sequence"] = .init(ints: sequence, shape: [count])
        file.tensors["position"] = .init(ints: position, shape: [count])
        let flat = sequences.flatMap { $0 }
        file.tensors["sequence.tokens"] = .init(ints: flat, shape: [flat.count])
        file.tensors["sequence.lengths"] = .init(ints: sequences.map { Int32($0.count) }, shape: [sequences.count])
        try file.write(to: path)
    }

    /// Reads a dataset written by `write`; nil (not an error) when it lacks a layer we need or its
    /// metadata differs from `expected`, so the caller regenerates it.
    public static func read(path: String, exitLayers: [Int], expected: [String: String]) -> ExitDataset? {
        guard let file = try? SafetensorsFile(path: path), file.metadata["collm.exit_dataset"] == "v2",
              expected.allSatisfy({ file.metadata[$0.key] == $0.value }),
              let k = file.metadata["teacher_k"].flatMap(Int.init),
              let target = file.tensors["target"], target.shape.count == 2,
              let top1 = file.tensors["top1"]?.ints, let ids = file.tensors["teacher.ids"]?.ints,
              let probs = file.tensors["teacher.probs"]?.floats, let prompt = file.tensors["prompt"]?.ints,
              let sequence = file.tensors["sequence"]?.ints, let position = file.tensors["position"]?.ints,
              let flat = file.tensors["sequence.tokens"]?.ints, let lengths = file.tensors["sequence.lengths"]?.ints,
              lengths.allSatisfy({ $0 >= 0 }), lengths.reduce(0, { $0 + Int($1) }) == flat.count else { return nil }
        var data = ExitDataset(width: target.shape[1], exitLayers: exitLayers, teacherK: k)
        for layer in exitLayers {
            guard let values = file.tensors["states.\(layer)"]?.floats, values.count == target.shape[0] * target.shape[1] else { return nil }
            data.states[layer] = values
        }
        data.target = target.floats ?? []
        data.top1 = top1
        data.teacherIds = ids
        data.teacherProbabilities = probs
        data.prompt = prompt
        data.sequence = sequence
        data.position = position
        var offset = 0
        data.sequences = lengths.map { n in
            defer { offset += Int(n) }
            return Array(flat[offset..<offset + Int(n)])
        }
        guard data.target.count == data.count * data.width, ids.count == data.count * k, prompt.count == data.count,
              sequence.count == data.count, position.count == data.count,
              zip(sequence, position).allSatisfy({ s, p in s >= 0 && Int(s) < data.sequences.count && p >= 0
                  && Int(p) < data.sequences[Int(s)].count }) else { return nil }
        return data
    }
}
