import ArgumentParser
import Bench
import CollabCore
import Exits
import Foundation
import LLM

/// What an exit check costs next to a transformer layer, per decoded token: the full-vocabulary
/// head, and for every exit of the calibration its block and its screened decision (shortlist first, full head only when a
/// shortlisted token could pass). Medians over many single-token calls after a warm-up.
struct ExitBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exits", abstract: "Measure an exit check's cost against one layer's (use a release build).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Exit calibration file (default: the cached one for --split).") var calibration: String?
    @Option(name: .long, help: "Timed calls per measurement.") var iterations = 200
    @Option(name: .long, help: "Context positions before the measured token.") var context = 64
    @Option(name: .long, help: "How layer blocks run: \"stored\" (packed to match the file's weights: Q5_0 for q5, else Q8_0, as generate runs them), packed into an engine format (q8_0, q5_0, q5_1, q4_1, q4_0, f16, f32) or \"reference\" (the f32 training pass).")
    var layerBlock = "stored"
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    /// How `--layer-block` runs layer blocks; nil: packed to match the stored weights (or not a valid choice).
    var layerExecution: ExitLayer.Execution? {
        if layerBlock == "reference" { return .trainingPass }
        return [GGMLType.q8_0, .q4_1, .q4_0, .q5_0, .q5_1, .f16, .f32]
            .first { $0.description.lowercased() == layerBlock.lowercased() }.map { .packed($0) }
    }

    func validate() throws {
        if iterations < 5 || context < 1 { throw ValidationError("--iterations must be >= 5 and --context >= 1") }
        if layerBlock != "stored" && layerExecution == nil {
            throw ValidationError("--layer-block: \(layerBlock) is not stored, q8_0, q5_0, q5_1, q4_1, q4_0, f16, f32 or reference")
        }
    }

    func run() throws {
        let (gguf, _) = try modelOptions.openModelFile()
        let fingerprint = gguf.fingerprint()
        let split = try SplitDefault.resolve(splitOption, gguf: gguf)
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, layers: 0..<split, head: true, activations: modelOptions.activations, pool: pool)
        guard let (calibrated, path) = try CalibrationStore.load(calibration, fingerprint: fingerprint, split: split),
              !calibrated.exits.isEmpty else {
            throw CLIError("no calibration for split \(split): run `collm calibrate --split \(split)` first")
        }
        let heads = try calibrated.heads(for: model, layerExecution: layerExecution)
        let cache = model.makeCache(capacity: context + 2)
        var prefix = try model.embed((0..<context).map { 100 + $0 })
        try model.forward(&prefix, cache: cache)
        let row = prefix.rows(context - 1..<context)

        func time(_ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<5 { try body() }
            var samples: [Double] = []
            for _ in 0..<iterations {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return median(samples)
        }
        // A layer's cost in a real decode step: all edge layers for one token, divided by their count
        // (one layer alone would stay in the CPU cache and look faster than it is).
        let layer = try time {
            cache.truncate(to: context)
            var h = row
            try model.forward(&h, cache: cache)
        } / Double(split)
        let head = try time { _ = try model.logits(row) }
        var exits: [ExitBenchOutput.Exit] = []
        for (exit, screened) in zip(calibrated.exits, heads) {
            var unscreened = screened
            unscreened.screen = nil
            // A layer block attends over the context: it holds the prefix, and each timed call re-runs the last position.
            try screened.observe(prefix, at: 0)
            let observe = { try screened.observe(row, at: context - 1) }
            let adapter = try time { try observe(); _ = try screened.adapted(row, pool: pool) }
            let full = try time { try observe(); _ = try unscreened.decide(row, model: model) }
            let cheap = try time { try observe(); _ = try screened.decide(row, model: model) }
            exits.append(.init(layer: exit.layer, block: exit.block.label, adapter_ms: adapter, decision_full_ms: full,
                               decision_screened_ms: cheap, adapter_layers: adapter / layer, decision_screened_layers: cheap / layer))
        }
        let out = ExitBenchOutput(calibration: path, threads: pool.threadCount, context: context, layer_ms: layer, head_ms: head,
                                  shortlist: calibrated.shortlist.count, vocabulary: model.config.vocabularySize, exits: exits)
        if json {
            try Console.printJSON(out)
        } else {
            Console.write(String(format: "one layer %.3f ms | full head %.3f ms (%.1f layers) | shortlist %d of %d tokens\n",
                                 layer, head, head / layer, out.shortlist, out.vocabulary))
            for e in exits {
                Console.write(String(format: """
                    exit %d (%@): block %.3f ms (%.2f layers) | exit decision: full %.3f ms (%.1f layers), \
                    screened %.3f ms (%.2f layers)\n
                    """, e.layer, e.block, e.adapter_ms, e.adapter_layers, e.decision_full_ms, e.decision_full_ms / layer,
                    e.decision_screened_ms, e.decision_screened_layers))
            }
        }
    }
}

struct ExitBenchOutput: Encodable {
    var calibration: String
    var threads: Int
    var context: Int
    var layer_ms: Double
    var head_ms: Double
    var shortlist: Int
    var vocabulary: Int
    /// Every exit of the calibration, in depth order.
    var exits: [Exit]

    struct Exit: Encodable {
        var layer: Int
        var block: String
        var adapter_ms: Double
        var decision_full_ms: Double
        var decision_screened_ms: Double
        var adapter_layers: Double
        var decision_screened_layers: Double
    }
}
