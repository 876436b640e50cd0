import ArgumentParser
import Bench
import CollabTransport
import Foundation
import LinkEmulator
import LLM

/// `collm bench collab`: the paper's comparison. Every prompt runs through every mode, cloud modes
/// over the link emulator at each link setting, exit modes at each threshold; edge and cloud are
/// separate processes pinned to separate cores. Writes collab.json, collab.md and SVG plots.
struct CollabBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collab",
        abstract: "Compare local, edge, collab, cloud and naive modes over emulated links (use a release build).",
        discussion: """
            Starts `collm cloud` pinned to --cloud-cpu, an in-process link emulator (see `collm linkem`) in front \
            of it, and one `collm generate --json` process per prompt and configuration pinned to --edge-cpu. \
            The full model's answers (mode local) are the accuracy reference. Progress goes to stderr; results \
            to OUTPUT/collab.json, collab.md and collab-*.svg. --quick is a smoke run of a few seconds per mode.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Modes, comma separated (local always runs: it is the reference).")
    var modes = "local,edge,collab,cloud,naive,spec"
    @Option(name: .long, help: "Link settings RTT_MS:MBIT, comma separated.") var links = "20:100,100:10"
    @Option(name: .long, help: ArgumentHelp(
        "Exit thresholds, comma separated (modes with exits run once per threshold).",
        discussion: "'calibrated' runs with each exit's calibrated threshold, as `collm generate` does by default."))
    var thresholds = "calibrated,0.6,0.8,0.9,1.0"
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Exit layers, comma separated; 'calibration' (default): the calibrated exits; empty: none.") var exits = "calibration"
    @Option(name: .long, help: "Hidden-state wire format: f32|f16|q8.") var wire = "f16"
    @Option(name: .customLong("max-tokens"), help: "Tokens per instruction response.") var maxTokens = 64
    @Option(name: .customLong("qa-max-tokens"), help: "Tokens per QA response.") var qaMaxTokens = 24
    @Option(name: .long, help: "JSON prompt file [{id, kind, text, answers}] instead of the built-in set.") var prompts: String?
    @Option(name: .customLong("instructions"), help: "Use the first N instruction prompts (default: all).") var instructionLimit: Int?
    @Option(name: .customLong("questions"), help: "Use the first N QA prompts (default: all).") var qaLimit: Int?
    @Flag(name: .customLong("held-out"), help: ArgumentHelp(
        "Leave out prompts that the exit calibration also uses (the same question or instruction).",
        discussion: "The exits were fitted, or their thresholds picked, on a share of those prompts."))
    var heldOut = false
    @Option(name: .customLong("generate-arg"), parsing: .unconditionalSingleValue,
            help: "Extra argument for every `collm generate` run (repeatable), e.g. --generate-arg --calibration --generate-arg FILE.")
    var generateArgs: [String] = []
    @OptionGroup var cloudLoss: CloudLossOptions
    @OptionGroup var processes: ChildProcessOptions
    @Option(name: .long, help: "Seconds before one generation is given up.") var timeout: Double = 600
    @Flag(name: .long, help: "Smoke run: 2 prompts, one link (20:100), thresholds calibrated and 1.0, 8 tokens.") var quick = false

    func validate() throws {
        do {
            _ = try GenerationMode.parseList(modes)
            _ = try LinkSetting.parseList(links)
            _ = try BenchThreshold.parseList(thresholds, option: "--thresholds")
        } catch let error as BenchError { throw ValidationError(error.description) }
        if maxTokens < 1 || qaMaxTokens < 1 { throw ValidationError("--max-tokens and --qa-max-tokens must be positive") }
        if !["f32", "f16", "q8"].contains(wire) { throw ValidationError("--wire must be f32, f16 or q8") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let start = Date()
        let plan = try makePlan()
        let runner = try CollabBenchRunner(plan: plan)
        let report = try await runner.run()
        let folder = URL(fileURLWithPath: processes.output)
        try CollabBenchOutput.write(report, to: folder, elapsed: Date().timeIntervalSince(start))
        Console.status("bench collab: \(report.runs.count) runs, \(report.errors.count) errors, \(String(format: "%.0f", Date().timeIntervalSince(start))) s; wrote \(folder.path)/collab.json, collab.md, collab-*.svg")
        if !report.errors.isEmpty { throw CLIError("\(report.errors.count) runs failed; first: \(report.errors[0])") }
    }

    private func makePlan() throws -> CollabBenchPlan {
        var set = try prompts.map(BenchPrompt.load) ?? BenchPrompt.builtIn
        if heldOut { set = BenchPrompt.leavingOutCalibration(set) }
        var instructions = set.filter { $0.kind != "qa" }
        var questions = set.filter { $0.kind == "qa" }
        if let instructionLimit { instructions = Array(instructions.prefix(max(0, instructionLimit))) }
        if let qaLimit { questions = Array(questions.prefix(max(0, qaLimit))) }
        if quick {
            instructions = Array(instructions.prefix(1))
            questions = Array(questions.prefix(1))
        }
        set = instructions + questions
        guard !set.isEmpty else { throw CLIError("no prompts selected") }
        let modelPath = try modelOptions.resolvedModelPath()
        let config = try ModelConfig(gguf: try GGUFFile(path: modelPath))
        let split = try SplitDefault.resolve(splitOption, layerCount: config.layerCount)
        return CollabBenchPlan(
            modelPath: modelPath, layers: config.layerCount, split: split, exits: exits, wire: wire,
            maxTokens: quick ? 8 : maxTokens, qaMaxTokens: quick ? 8 : qaMaxTokens,
            threads: modelOptions.threads ?? 1, generateArgs: generateArgs + cloudLoss.generateArguments,
            modes: try GenerationMode.parseList(modes),
            links: try LinkSetting.parseList(quick ? "20:100" : links),
            thresholds: try BenchThreshold.parseList(quick ? "calibrated,1.0" : thresholds, option: "--thresholds"),
            prompts: set, launcher: processes.launcher,
            edgeCPU: processes.edgeCPUPin, cloudCPU: processes.cloudCPUPin,
            timeout: timeout, quick: quick)
    }
}
