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

    /// What maps an exit layer's state to the head's input, with its weights.
    public enum Block: Sendable, Equatable {
        /// The logit lens: the state as it is.
        case identity
        /// A fitted affine adapter z = A h + b (A row-major, width x width).
        case ridge(matrix: [Float], bias: [Float])
        /// A trained residual MLP block.
        case mlp(ExitBlock)
        /// Trained transformer layers, each with its own KV cache.
        case layer(StackedTransformerExitBlock)

        /// Its name in calibration files and reports.
        public var name: String {
            switch self {
            case .identity: "identity"
            case .ridge: "ridge"
            case .mlp: "mlp"
            case .layer: "layer"
            }
        }

        /// `name`, with a layer block's depth when it has more than one layer ("layer x2").
        public var label: String {
            if case let .layer(block) = self, block.depth > 1 { return "\(name) x\(block.depth)" }
            return name
        }

        /// The block as a file storing it at `precision` gives it back (a layer block's norms kept exact).
        public func rounded(to precision: WeightPrecision) -> Block {
            switch self {
            case .identity, .ridge: self
            case let .mlp(block): .mlp(block.rounded(to: precision))
            case let .layer(block): .layer(block.rounded(to: precision))
            }
        }

        /// The transform an exit head runs at inference; a layer block runs beside `model`'s layers,
        /// as layer `index`.
        func transform(for model: LlamaModel, at index: Int, layerExecution: ExitLayer.Execution) throws -> (any ExitTransform)? {
            switch self {
            case .identity: nil
            case let .ridge(matrix, bias): ExitAdapter(matrix: matrix, bias: bias)
            case let .mlp(block): ExitMLP(block: block)
            case let .layer(block): try ExitLayer(block: block, beside: model, at: index, execution: layerExecution)
            }
        }
    }

    public struct Exit: Sendable, Equatable {
        public var layer: Int
        public var block: Block
        /// Held-out figures of the ridge adapter when the exit's block is another one (for comparison).
        public var ridge: Evaluation?
        /// Training facts (seconds, epochs, ms per step, MACs per token) for trained blocks.
        public var training: [String: Double] = [:]
        /// How a trained block's weights are stored; a layer block is packed to match (`packingFormat`).
        public var weights = WeightPrecision.f32
        public var threshold: Float
        /// Held-out figures: at the chosen threshold, of the adapter, and of the logit lens.
        public var testExitRate: Double
        public var testPrecision: Double
        public var adapter: Evaluation
        public var logitLens: Evaluation

        public init(layer: Int, block: Block, threshold: Float, testExitRate: Double, testPrecision: Double,
                    adapter: Evaluation, logitLens: Evaluation) {
            self.layer = layer
            self.block = block
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
    /// What the thresholds and curves measure confidence over; `.shortlist` needs a shortlist.
    public var rule: ExitRule
    /// The format the screen re-quantizes the shortlist's head rows to (nil: the head's own); the
    /// thresholds were picked on logits from these rows.
    public var shortlistRows: GGMLType?
    /// Free-form facts about the run (prompts, tokens per part, seconds).
    public var notes: [String: String]

    public init(fingerprint: String, split: Int, targetPrecision: Double, exits: [Exit], shortlist: [Int],
                rule: ExitRule = .full, shortlistRows: GGMLType? = nil, notes: [String: String] = [:]) {
        self.fingerprint = fingerprint
        self.split = split
        self.targetPrecision = targetPrecision
        self.exits = exits
        self.shortlist = shortlist
        self.rule = rule
        self.shortlistRows = shortlistRows
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

    /// Exit heads for `model`, each with its block, threshold (or `threshold` for all), the shortlist
    /// screen and the file's rule. Layer blocks run as `layerExecution`, by default packed to match their
    /// stored weights. `screen: false` drops the screen of the full rule (the shortlist rule needs it).
    public func heads(for model: LlamaModel, threshold: Float? = nil, screen useScreen: Bool = true,
                      layerExecution: ExitLayer.Execution? = nil) throws -> [ExitHead] {
        let screened = !shortlist.isEmpty && (useScreen || rule == .shortlist)
        let screen = screened ? try VocabularyScreen(tokens: shortlist, model: model, rowType: shortlistRows) : nil
        return try exits.map { exit in
            let execution = layerExecution ?? .packed(exit.weights.packingFormat)
            return ExitHead(layer: exit.layer, threshold: threshold ?? exit.threshold,
                            adapter: try exit.block.transform(for: model, at: exit.layer, layerExecution: execution),
                            screen: screen, rule: rule)
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
            /// Layers in a layer block; absent for one.
            var layer_depth: Int?
            var training: [String: Double]?
        }

        var format = "collm.calibration.v1"
        var fingerprint: String
        var split: Int
        var target_precision: Double
        /// Absent for `.full` (as in files made before the shortlist rule).
        var exit_rule: ExitRule?
        /// ggml's name of the shortlist rows' format ("Q4_0"); absent: the head's own.
        var shortlist_rows: String?
        var exits: [ExitHeader]
        var notes: [String: String]
    }

    static let metadataKey = "collm.calibration"

    /// Trained blocks' weights are stored as each exit's `weights` says (ridge adapters stay f32).
    public func write(to path: String) throws {
        var file = SafetensorsFile()
        let header = Header(fingerprint: fingerprint, split: split, target_precision: targetPrecision,
                            exit_rule: rule == .full ? nil : rule, shortlist_rows: shortlistRows?.description,
                            exits: exits.map {
                                var mlpShape: ExitBlockShape?, layerShape: TransformerExitShape?, layerDepth: Int?
                                switch $0.block {
                                case let .mlp(block): mlpShape = block.shape
                                case let .layer(block): (layerShape, layerDepth) = (block.shape, block.depth > 1 ? block.depth : nil)
                                case .identity, .ridge: break
                                }
                                return .init(layer: $0.layer, block: $0.block.name, threshold: $0.threshold, test_exit_rate: $0.testExitRate,
                                             test_precision: $0.testPrecision, adapter: $0.adapter, logit_lens: $0.logitLens,
                                             ridge: $0.ridge, mlp_shape: mlpShape, layer_shape: layerShape, layer_depth: layerDepth,
                                             training: $0.training.isEmpty ? nil : $0.training)
                            }, notes: notes)
        file.metadata[Self.metadataKey] = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
        for exit in exits {
            let name = "exit.\(exit.layer)."
            switch exit.block {
            case .identity: break
            case let .ridge(matrix, bias):
                file.tensors[name + "matrix"] = .init(floats: matrix, shape: [bias.count, bias.count])
                file.tensors[name + "bias"] = .init(floats: bias, shape: [bias.count])
            case let .mlp(block): file.tensors.merge(exit.weights.tensors(block.parameters, name: name + "mlp")) { $1 }
            case let .layer(block):
                file.tensors.merge(exit.weights.tensors(block.parameters, name: name + "layer", keeping: block.normParameters)) { $1 }
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
            /// A trained block stored as `exit.<layer>.<name>` with its shape in the header.
            func trained<Shape, Trained>(_ name: String, _ what: String, _ shape: Shape?,
                                         _ make: (Shape, [Float]) throws -> Trained) throws -> Trained {
                guard let shape, let parameters = WeightPrecision.values(named: "exit.\(e.layer).\(name)", in: file),
                      parameters.allSatisfy(\.isFinite), let block = try? make(shape, parameters) else {
                    throw fail("exit \(e.layer): the \(what)'s parameters are missing, misshapen or not finite")
                }
                return block
            }
            let block: Block
            switch e.block {
            case "identity": block = .identity
            case "ridge":
                guard let m = file.tensors["exit.\(e.layer).matrix"]?.floats, let b = file.tensors["exit.\(e.layer).bias"]?.floats,
                      !b.isEmpty, m.count == b.count * b.count, m.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else {
                    throw fail("exit \(e.layer): adapter tensors are missing, misshapen or not finite")
                }
                block = .ridge(matrix: m, bias: b)
            case "mlp": block = .mlp(try trained("mlp", "MLP block", e.mlp_shape) { try ExitBlock(shape: $0, parameters: $1) })
            case "layer":
                block = .layer(try trained("layer", "layer block", e.layer_shape) {
                    try StackedTransformerExitBlock(shape: $0, depth: e.layer_depth ?? 1, parameters: $1)
                })
            default: throw fail("exit \(e.layer): unknown block \(e.block)")
            }
            var exit = Exit(layer: e.layer, block: block, threshold: e.threshold, testExitRate: e.test_exit_rate,
                            testPrecision: e.test_precision, adapter: e.adapter, logitLens: e.logit_lens)
            exit.ridge = e.ridge
            exit.training = e.training ?? [:]
            exit.weights = WeightPrecision.stored(named: "exit.\(e.layer).\(e.block)", in: file) ?? .f32
            exits.append(exit)
        }
        let shortlist = (file.tensors["shortlist"]?.ints ?? []).map(Int.init)
        let rule = header.exit_rule ?? .full
        guard rule == .full || !shortlist.isEmpty else { throw fail("the exits decide over a shortlist, and the file has none") }
        let rows = try header.shortlist_rows.map { name in
            guard let type = GGMLType(named: name), type.isSupported else { throw fail("unknown shortlist row format \(name)") }
            guard rule == .shortlist else { throw fail("re-quantized shortlist rows cannot bound the full head's logits (rule full)") }
            return type
        }
        self.init(fingerprint: header.fingerprint, split: header.split, targetPrecision: header.target_precision,
                  exits: exits, shortlist: shortlist, rule: rule, shortlistRows: rows, notes: header.notes)
    }
}
