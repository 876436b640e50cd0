import CollabCore
import Exits
import Foundation
import LLM

/// Generates on the edge in one of its modes; `EdgeRunner` (edge, collab) and `SpeculativeRunner` (spec).
public protocol EdgeGenerator {
    /// `onPiece` receives each complete UTF-8 piece of text with the source of its token.
    func generate(prompt: [Int], onPiece: (_ text: String, _ source: TokenSource) -> Void) async throws -> EdgeGeneration
}

extension EdgeGenerator {
    public func generate(prompt: [Int], onText: (String) -> Void = { _ in }) async throws -> EdgeGeneration {
        try await generate(prompt: prompt, onPiece: { text, _ in onText(text) })
    }
}

/// A bad option for the edge (split, exits, calibration); the message names it.
public struct EdgeSetupError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}

/// The local side of a run, built from options in one place for `generate`, `serve` and the
/// benchmarks: the model's layer range (the whole model for `local`, layers [0, s) otherwise, with
/// the head where exits decide), the calibrated exits and the edge options; then the runner.
public struct EdgeSetup {
    public let mode: GenerationMode
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let fingerprint: [UInt8]
    /// The edge's options; callers set sampling, limits, wire and cloud-loss policy before `makeRunner`.
    public var options: EdgeOptions
    /// The exits in use (empty for local, naive and cloud).
    public var heads: [ExitHead] { options.exits }
    /// The calibration file used, if any.
    public let calibrationPath: String?

    /// `exitLayers` picks exits (calibrated ones keep their blocks, others use the logit lens);
    /// empty: the calibration's. `threshold` overrides the calibrated thresholds; spec drafts at 0.5
    /// by default (a wrong draft costs little). Not for `.cloud`, which runs nothing here.
    public init(gguf: GGUFFile, tokenizer: Tokenizer, mode: GenerationMode, split: Int, exitLayers: [Int] = [],
                threshold: Float? = nil, calibration: String? = nil, activations: ActivationPrecision,
                threads: Int) throws {
        precondition(mode != .cloud, "the cloud mode runs no model on the edge")
        let config = try ModelConfig(gguf: gguf)
        self.mode = mode
        self.tokenizer = tokenizer
        fingerprint = gguf.fingerprint()
        let pool = ThreadPool(threadCount: threads)
        if mode == .local {
            model = try LlamaModel(file: gguf, activations: activations, pool: pool)
            options = EdgeOptions(mode: mode)
            calibrationPath = nil
            return
        }
        guard split > 0, split < config.layerCount else { throw EdgeSetupError("--split must be in 1..<\(config.layerCount)") }
        if let bad = exitLayers.first(where: { $0 > split }) { throw EdgeSetupError("exit layer \(bad) must be at most the split \(split)") }
        model = try LlamaModel(file: gguf, layers: 0..<split, head: mode.usesExits, activations: activations, pool: pool)
        guard mode.usesExits else {
            options = EdgeOptions(mode: mode)
            calibrationPath = nil
            return
        }
        let loaded = try CalibrationStore.load(calibration, fingerprint: fingerprint, split: split)
        let override = mode == .spec ? (threshold ?? 0.5) : threshold
        let calibrated = try loaded?.0.heads(for: model, threshold: override) ?? []
        let heads = exitLayers.isEmpty ? calibrated : exitLayers.map { layer in
            calibrated.first { $0.layer == layer } ?? ExitHead(layer: layer, threshold: override ?? 0.9)
        }
        options = EdgeOptions(mode: mode, exits: heads)
        options.draftThreshold = override ?? options.draftThreshold
        calibrationPath = loaded?.1
    }

    /// The runner for this mode (edge, collab or spec); `connector` reaches the cloud (ignored by `.edge`).
    public func makeRunner(connector: CloudConnector?, options: EdgeOptions? = nil) throws -> EdgeGenerator {
        let options = options ?? self.options
        switch mode {
        case .edge, .collab:
            return try EdgeRunner(model: model, tokenizer: tokenizer, fingerprint: fingerprint, options: options,
                                  connector: mode == .collab ? connector : nil)
        case .spec:
            return try SpeculativeRunner(model: model, tokenizer: tokenizer, fingerprint: fingerprint, options: options,
                                         connector: connector)
        case .local, .cloud, .naive:
            throw EdgeSetupError("mode \(mode.rawValue) has no edge runner")
        }
    }
}
