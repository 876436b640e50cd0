import ArgumentParser
import Bench
import CollabCore
import Exits
import Foundation
import LLM

/// What an exit check costs next to a transformer layer, per decoded token: the full-vocabulary
/// head, the fitted adapter, and the screened decision (shortlist first, full head only when a
/// shortlisted token could pass). Medians over many single-token calls after a warm-up.
struct ExitBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exits", abstract: "Measure an exit check's cost against one layer's (use a release build).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Split layer s (the edge model is [0, s)).") var split = 15
    @Option(name: .long, help: "Exit calibration file (default: the cached one for --split).") var calibration: String?
    @Option(name: .long, help: "Timed calls per measurement.") var iterations = 200
    @Option(name: .long, help: "Context positions before the measured token.") var context = 64
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    func validate() throws {
        if iterations < 5 || context < 1 { throw ValidationError("--iterations must be >= 5 and --context >= 1") }
    }

    func run() throws {
        let (gguf, _) = try modelOptions.openModelFile()
        let fingerprint = gguf.fingerprint()
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, layers: 0..<split, head: true, activations: modelOptions.activations, pool: pool)
        guard let (calibrated, path) = try CalibrationStore.load(calibration, fingerprint: fingerprint, split: split),
              let exit = calibrated.exits.last else {
            throw CLIError("no calibration for split \(split): run `collm calibrate --split \(split)` first")
        }
        let screened = try calibrated.heads(for: model).last!
        var unscreened = screened
        unscreened.screen = nil
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
        // A layer block attends over the context: it holds the prefix, and each timed call re-runs the last position.
        try screened.observe(prefix, at: 0)
        let observe = { try screened.observe(row, at: context - 1) }
        let adapter = try time { try observe(); _ = try screened.adapted(row, pool: pool) }
        let full = try time { try observe(); _ = try unscreened.decide(row, model: model) }
        let cheap = try time { try observe(); _ = try screened.decide(row, model: model) }
        let out = ExitBenchOutput(
            calibration: path, exit_layer: exit.layer, threads: pool.threadCount, context: context, layer_ms: layer,
            head_ms: head, adapter_ms: adapter, decision_full_ms: full, decision_screened_ms: cheap,
            shortlist: calibrated.shortlist.count, vocabulary: model.config.vocabularySize)
        if json {
            try Console.printJSON(out)
        } else {
            Console.write(String(format: """
                one layer %.3f ms | full head %.3f ms (%.1f layers) | adapter %.3f ms | exit decision: full %.3f ms \
                (%.1f layers), screened over %d of %d tokens %.3f ms (%.1f layers)\n
                """, layer, head, head / layer, adapter, full, full / layer, out.shortlist, out.vocabulary, cheap, cheap / layer))
        }
    }
}

struct ExitBenchOutput: Encodable {
    var calibration: String
    var exit_layer: Int
    var threads: Int
    var context: Int
    var layer_ms: Double
    var head_ms: Double
    var adapter_ms: Double
    var decision_full_ms: Double
    var decision_screened_ms: Double
    var shortlist: Int
    var vocabulary: Int
}
