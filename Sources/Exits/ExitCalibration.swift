import CollabCore
import Foundation
import LLM

/// A calibration file: fitted exit adapters, their thresholds and held-out curves, for one model
/// (by fingerprint) and split. Stored as safetensors: tensors `exit.<layer>.matrix` / `.bias`,
/// `shortlist`, and the report as JSON in the metadata key `collm.calibration`.
public struct ExitCalibration: Sendable, Equatable {
    public struct CurvePoint: Codable, Sendable, Equatable {
        public var threshold: Double
        /// Share of tokens whose confidence reaches the threshold.
        public var exitRate: Double
        /// Share of those that equal the full model's top-1 (1 when none exit).
        public var agreement: Double

        public init(threshold: Double, exitRate: Double, agreement: Double) {
            self.threshold = threshold
            self.exitRate = exitRate
            self.agreement = agreement
        }
    }

    /// Held-out measurements of one exit head (adapter or logit lens).
    public struct Evaluation: Codable, Sendable, Equatable {
        /// Top-1 agreement with the full model over all test tokens.
        public var agreement: Double
        /// Largest exit rate at which exited tokens agree at least this often ("0.8", "0.9").
        public var exitRateAtPrecision: [String: Double]
        public var curve: [CurvePoint]

        public init(agreement: Double, exitRateAtPrecision: [String: Double], curve: [CurvePoint]) {
            self.agreement = agreement
            self.exitRateAtPrecision = exitRateAtPrecision
            self.curve = curve
        }
    }

    public struct Exit: Sendable, Equatable {
        public var layer: Int
        /// "ridge" (fitted affine adapter), "mlp" (trained residual block), "layer" (trained transformer
        /// layer with its own KV cache) or "identity" (logit lens).
        public var block: String
        public var matrix: [Float]?
        public var bias: [Float]?
        /// The trained block, for "mlp".
        public var mlp: ExitBlock?
        /// The trained transformer layer, for "layer".
        public var layerBlock: TransformerExitBlock?
        /// Held-out figures of the ridge adapter when the exit's block is another one (for comparison).
        public var ridge: Evaluation?
        /// Training facts (seconds, epochs, ms per step, MACs per token) for trained blocks.
        public var training: [String: Double] = [:]
        public var threshold: Float
        /// Held-out figures: at the chosen threshold, of the adapter, and of the logit lens.
        public var testExitRate: Double
        public var testPrecision: Double
        public var adapter: Evaluation
        public var logitLens: Evaluation

        public init(layer: Int, block: String, matrix: [Float]?, bias: [Float]?, threshold: Float, testExitRate: Double,
                    testPrecision: Double, adapter: Evaluation, logitLens: Evaluation) {
            self.layer = layer
            self.block = block
            self.matrix = matrix
            self.bias = bias
            self.threshold = threshold
            self.testExitRate = testExitRate
            self.testPrecision = testPrecision
            self.adapter = adapter
            self.logitLens = logitLens
        }
    }

    /// Hex SHA-256 of the model's tensors (`GGUFFile.fingerprint()`).
    public var fingerprint: String
    public var split: Int
    public var targetPrecision: Double
    public var exits: [Exit]
    /// Tokens the exit screen keeps (see `VocabularyScreen`); empty: no screen.
    public var shortlist: [Int]
    /// Free-form facts about the run (prompts, tokens per part, seconds).
    public var notes: [String: String]

    public init(fingerprint: String, split: Int, targetPrecision: Double, exits: [Exit], shortlist: [Int],
                notes: [String: String] = [:]) {
        self.fingerprint = fingerprint
        self.split = split
        self.targetPrecision = targetPrecision
        self.exits = exits
        self.shortlist = shortlist
        self.notes = notes
    }

    public static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// Refuses a file made for another model.
    public func check(fingerprint model: [UInt8]) throws {
        guard fingerprint == Self.hex(model) else {
            throw CollabError(.fingerprintMismatch,
                              "the calibration file was made for another model (fingerprint \(fingerprint.prefix(12))..., this model \(Self.hex(model).prefix(12))...)")
        }
    }

    /// Exit heads for `model`, each with its adapter, threshold (or `threshold` for all) and the shortlist screen.
    public func heads(for model: LlamaModel, threshold: Float? = nil, screen useScreen: Bool = true) throws -> [ExitHead] {
        let screen = useScreen && !shortlist.isEmpty ? try VocabularyScreen(tokens: shortlist, model: model) : nil
        return exits.map { exit in
            let affine = exit.matrix.flatMap { m in exit.bias.map { ExitAdapter(matrix: m, bias: $0) } }
            let layer: (any ExitTransform)? = exit.layerBlock.map { ExitLayer(block: $0, capacity: model.config.contextLength, pool: model.pool) }
            let transform: (any ExitTransform)? = layer ?? exit.mlp.map { ExitMLP(block: $0) } ?? affine
            return ExitHead(layer: exit.layer, threshold: threshold ?? exit.threshold, adapter: transform, screen: screen)
        }
    }
}

// MARK: - File format

extension ExitCalibration {
    private struct Header: Codable {
        struct ExitHeader: Codable {
            var layer: Int
            var block: String
            var threshold: Float
            var test_exit_rate: Double
            var test_precision: Double
            var adapter: Evaluation
            var logit_lens: Evaluation
            var ridge: Evaluation?
            var mlp_shape: ExitBlockShape?
            var layer_shape: TransformerExitShape?
            var training: [String: Double]?
        }

        var format = "collm.calibration.v1"
        var fingerprint: String
        var split: Int
        var target_precision: Double
        var exits: [ExitHeader]
        var notes: [String: String]
    }

    static let metadataKey = "collm.calibration"

    /// `halfPrecision` stores trained blocks' weights as f16 (half the size; the shipped default).
    public func write(to path: String, halfPrecision: Bool = false) throws {
        func weights(_ values: [Float]) -> SafetensorsFile.Tensor {
            halfPrecision ? .init(halfPrecision: values, shape: [values.count]) : .init(floats: values, shape: [values.count])
        }
        var file = SafetensorsFile()
        let header = Header(fingerprint: fingerprint, split: split, target_precision: targetPrecision,
                            exits: exits.map {
                                .init(layer: $0.layer, block: $0.block, threshold: $0.threshold, test_exit_rate: $0.testExitRate,
                                      test_precision: $0.testPrecision, adapter: $0.adapter, logit_lens: $0.logitLens,
                                      ridge: $0.ridge, mlp_shape: $0.mlp?.shape, layer_shape: $0.layerBlock?.shape, training: $0.training.isEmpty ? nil : $0.training)
                            }, notes: notes)
        file.metadata[Self.metadataKey] = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
        for exit in exits {
            if let m = exit.matrix { file.tensors["exit.\(exit.layer).matrix"] = .init(floats: m, shape: [exit.bias?.count ?? 0, exit.bias?.count ?? 0]) }
            if let b = exit.bias { file.tensors["exit.\(exit.layer).bias"] = .init(floats: b, shape: [b.count]) }
            if let mlp = exit.mlp {
                file.tensors["exit.\(exit.layer).mlp"] = weights(mlp.parameters)
            }
            if let block = exit.layerBlock {
                file.tensors["exit.\(exit.layer).layer"] = weights(block.parameters)
            }
        }
        if !shortlist.isEmpty { file.tensors["shortlist"] = .init(ints: shortlist.map(Int32.init), shape: [shortlist.count]) }
        try file.write(to: path)
    }

    public init(path: String) throws {
        let file = try SafetensorsFile(path: path)
        func fail(_ reason: String) -> CollabError { CollabError(.invalidArgument, "\(path): \(reason)") }
        guard let json = file.metadata[Self.metadataKey],
              let header = try? JSONDecoder().decode(Header.self, from: Data(json.utf8)) else {
            throw fail("not a collm calibration file (no \(Self.metadataKey) metadata)")
        }
        guard header.format == "collm.calibration.v1" else { throw fail("unsupported format \(header.format)") }
        var exits: [Exit] = []
        for e in header.exits {
            let matrix = file.tensors["exit.\(e.layer).matrix"]?.floats
            let bias = file.tensors["exit.\(e.layer).bias"]?.floats
            if matrix != nil || bias != nil {
                guard let m = matrix, let b = bias, !b.isEmpty, m.count == b.count * b.count,
                      m.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else {
                    throw fail("exit \(e.layer): adapter tensors are missing, misshapen or not finite")
                }
            }
            /// A trained block stored as `exit.<layer>.<name>` with its shape in the header.
            func trained<Shape, Block>(_ name: String, _ what: String, _ shape: Shape?,
                                       _ make: (Shape, [Float]) throws -> Block) throws -> Block? {
                guard let shape else { return nil }
                guard let parameters = file.tensors["exit.\(e.layer).\(name)"]?.floats, parameters.allSatisfy(\.isFinite),
                      let block = try? make(shape, parameters) else {
                    throw fail("exit \(e.layer): the \(what)'s parameters are missing, misshapen or not finite")
                }
                return block
            }
            let mlp = try trained("mlp", "MLP block", e.mlp_shape) { try ExitBlock(shape: $0, parameters: $1) }
            let layerBlock = try trained("layer", "layer block", e.layer_shape) { try TransformerExitBlock(shape: $0, parameters: $1) }
            var exit = Exit(layer: e.layer, block: e.block, matrix: matrix, bias: bias, threshold: e.threshold,
                            testExitRate: e.test_exit_rate, testPrecision: e.test_precision,
                            adapter: e.adapter, logitLens: e.logit_lens)
            exit.mlp = mlp
            exit.layerBlock = layerBlock
            exit.ridge = e.ridge
            exit.training = e.training ?? [:]
            exits.append(exit)
        }
        let shortlist = (file.tensors["shortlist"]?.ints ?? []).map(Int.init)
        self.init(fingerprint: header.fingerprint, split: header.split, targetPrecision: header.target_precision,
                  exits: exits, shortlist: shortlist, notes: header.notes)
    }
}
