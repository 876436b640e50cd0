import ArgumentParser
import Bench
import Foundation
import LLM

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, computed as llama.cpp's llama-perplexity does.",
        discussion: "Chunks of --ctx tokens; the second half of each chunk is scored.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Text file to score.") var file: String
    @Option(name: .long, help: "Tokens per chunk.") var ctx = 512
    @Option(name: .long, help: "Score at most this many chunks (default: all).") var chunks: Int?
    @Flag(name: .long, help: "Print one JSON object {\"ppl\", \"tokens\", \"chunks\"}.") var json = false

    func validate() throws {
        if ctx < 4 || ctx % 2 != 0 { throw ValidationError("--ctx must be an even number >= 4 (got \(ctx))") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1") }
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        let text = String(decoding: data, as: UTF8.self)
        let (gguf, tokenizer) = try modelOptions.openModelFile()
        let pool = ThreadPool(threadCount: modelOptions.threadCount)
        let model = try LlamaModel(file: gguf, activations: modelOptions.activations, pool: pool)
        guard ctx <= model.config.contextLength else {
            throw CLIError("--ctx \(ctx) exceeds the model's context length \(model.config.contextLength)")
        }
        // As llama-perplexity: the text is tokenized with the vocabulary's special tokens (a BOS first
        // when the model adds one, as Gemma does), so chunks start at the same tokens.
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let result = try model.perplexity(
            tokens: tokens, context: ctx, maxChunks: chunks, bos: tokenizer.addBOS ? tokenizer.bos : nil
        ) { done, total, ppl in
            Console.progress("\(Console.bar(done, total)) chunk \(done)/\(total)  ppl \(String(format: "%.4f", ppl))")
        }
        Console.endProgress()
        if json {
            try Console.printJSON(result)
        } else {
            Console.write(String(format: "ppl %.4f over %d tokens (%d chunks of %d) in %.1f s\n",
                                 result.ppl, result.tokens, result.chunks, ctx, result.seconds))
        }
    }
}
