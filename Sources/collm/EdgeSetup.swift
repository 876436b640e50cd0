import ArgumentParser
import CollabCore
import Edge
import Exits
import LLM

/// The edge side of a split run, assembled from command options: the model's layer range with the
/// head, the calibrated exits and the edge options. The one place `generate` and the benchmarks
/// build an edge.
struct EdgeSetup {
    let model: LlamaModel
    let options: EdgeOptions
    let heads: [ExitHead]
    /// The calibration file used, if any.
    let calibrationPath: String?

    /// `threshold` overrides the calibrated thresholds; spec drafts at 0.5 by default (a wrong draft costs little).
    static func make(gguf: GGUFFile, split: Int, speculative: Bool, standalone: Bool, exitLayers: [Int],
                     threshold: Float?, calibration: String?, activations: ActivationPrecision, threads: Int) throws -> EdgeSetup {
        let config = try ModelConfig(gguf: gguf)
        guard split > 0, split < config.layerCount else { throw ValidationError("--split must be in 1..<\(config.layerCount)") }
        if let bad = exitLayers.first(where: { $0 > split }) { throw ValidationError("exit layer \(bad) must be at most the split \(split)") }
        let model = try LlamaModel(file: gguf, layers: 0..<split, head: true, activations: activations,
                                   pool: ThreadPool(threadCount: threads))
        let loaded = try CalibrationStore.load(calibration, fingerprint: gguf.fingerprint(), split: split)
        let override = speculative ? (threshold ?? 0.5) : threshold
        let calibrated = try loaded?.0.heads(for: model, threshold: override) ?? []
        // --exits picks layers (calibrated ones keep their adapters); otherwise the calibration's exits.
        let heads = exitLayers.isEmpty ? calibrated : exitLayers.map { layer in
            calibrated.first { $0.layer == layer } ?? ExitHead(layer: layer, threshold: override ?? 0.9)
        }
        var options = EdgeOptions(mode: standalone ? .standalone : .collaborative, exits: heads)
        options.draftThreshold = override ?? options.draftThreshold
        return EdgeSetup(model: model, options: options, heads: heads, calibrationPath: loaded?.1)
    }
}
