import ArgumentParser
import Bench
import Foundation
import LLM

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks.", subcommands: [EngineBench.self, ExitBench.self, CollabBench.self, ScaleBench.self, LoadBench.self])
}

/// Engine speed: prefill and decode tokens/s on the model, medians over several runs.
/// `scripts/bench-engine.sh` runs this next to llama.cpp on the same model and threads.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "Measure prefill and decode speed (use a release build).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Measured runs (the median is reported).") var runs = 5
    @Option(name: .customLong("prompt-tokens"), help: "Prompt length for prefill.") var promptTokens = 256
    @Option(name: .customLong("gen-tokens"), help: "Tokens generated for decode.") var genTokens = 128
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    func validate() throws {
        if runs < 1 || promptTokens < 1 || genTokens < 1 { throw ValidationError("runs and token counts must be positive") }
    }

    func run() throws {
        let (gguf, tokenizer) = try modelOptions.openModelFile()
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, activations: modelOptions.activations, pool: pool)
        // A deterministic natural-text prompt, repeated to length.
        let seedText = "The quick brown fox jumps over the lazy dog while the committee debates the budget for next year. "
        var prompt: [Int] = []
        let unit = tokenizer.encode(seedText, addSpecial: false, parseSpecial: false)
        while prompt.count < promptTokens { prompt += unit }
        prompt = Array(prompt.prefix(promptTokens))

        var prefillRates: [Double] = []
        var decodeRates: [Double] = []
        for run in 0...runs {  // run 0 warms up caches and page faults
            let cache = model.makeCache(capacity: promptTokens + genTokens + 1)
            let t0 = Date()
            var hidden = try model.embed(prompt)
            try model.forward(&hidden, cache: cache)
            var logits = try model.logits(hidden, rows: [hidden.rows - 1])
            let t1 = Date()
            var sampler = Sampler(parameters: SamplingParameters())
            for _ in 0..<genTokens {
                let token = sampler.sample(logits: logits, history: [])
                var h = try model.embed([token])
                try model.forward(&h, cache: cache)
                logits = try model.logits(h)
            }
            let t2 = Date()
            if run > 0 {
                prefillRates.append(Double(promptTokens) / t1.timeIntervalSince(t0))
                decodeRates.append(Double(genTokens) / t2.timeIntervalSince(t1))
            }
            if !json { Console.progress("\(Console.bar(run, runs)) run \(run)/\(runs)") }
        }
        if !json { Console.endProgress() }
        let output = EngineBenchOutput(
            engine: "collm", threads: pool.threadCount, prompt_tokens: promptTokens, gen_tokens: genTokens,
            prefill_tok_s: median(prefillRates), decode_tok_s: median(decodeRates),
            prefill_runs: prefillRates, decode_runs: decodeRates, peak_rss_mib: peakResidentMiB())
        if json {
            try Console.printJSON(output)
        } else {
            Console.write(String(format: "threads %d: prefill %.1f tok/s (%d tokens), decode %.1f tok/s (%d tokens), peak RSS %.0f MiB, median of %d\n",
                                 output.threads, output.prefill_tok_s, promptTokens, output.decode_tok_s, genTokens,
                                 output.peak_rss_mib, runs))
        }
    }
}

struct EngineBenchOutput: Encodable {
    var engine: String
    var threads: Int
    var prompt_tokens: Int
    var gen_tokens: Int
    var prefill_tok_s: Double
    var decode_tok_s: Double
    var prefill_runs: [Double]
    var decode_runs: [Double]
    var peak_rss_mib: Double
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    if s.isEmpty { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Peak resident set size of this process, from getrusage (KiB on Linux).
func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
