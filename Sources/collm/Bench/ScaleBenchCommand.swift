import ArgumentParser
import Bench
import CollabTransport
import Foundation
import LinkEmulator
import LLM

/// `collm bench scale`: N concurrent edge processes against one cloud process. Shows whether the
/// cloud's batching keeps aggregate throughput growing as clients are added, and what it costs in
/// per-token latency and memory.
struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Measure N concurrent edge clients against one cloud (use a release build).",
        discussion: """
            For each N, starts N `collm generate --json` processes at once (each its own prompt) against one \
            `collm cloud`; reports aggregate tokens/s, per-token latency percentiles (gaps between consecutive \
            tokens), the cloud's batch sizes (Health counters) and memory. With 2 cores, all edges share \
            --edge-cpu: edge compute then limits throughput as much as the cloud does (say so when reading the \
            numbers, or use --edge-cpu -1). Writes OUTPUT/scale.json, scale.md, scale-*.svg.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Client counts, comma separated.") var clients = "1,2,4,8,16"
    @Option(name: .long, help: "Mode of every client: \(Self.modes.map(\.rawValue).joined(separator: ", ")).") var mode: GenerationMode = .collab
    @Option(name: .customLong("max-tokens"), help: "Tokens per client.") var maxTokens = 32
    @Option(name: .customLong("split"), help: ArgumentHelp(SplitDefault.help)) var splitOption: Int?
    @Option(name: .long, help: "Optional emulated link RTT_MS:MBIT between the clients and the cloud (default: direct).")
    var link: String?
    @Option(name: .customLong("generate-arg"), parsing: .unconditionalSingleValue,
            help: "Extra argument for every client (repeatable), e.g. --generate-arg --exits --generate-arg 8.")
    var generateArgs: [String] = []
    @OptionGroup var processes: ChildProcessOptions
    @Option(name: .long, help: "Seconds before a round is given up.") var timeout: Double = 900
    @Flag(name: .long, help: "Smoke run: clients 1,2 and 8 tokens.") var quick = false

    /// The modes whose clients all talk to one cloud.
    static let modes: [GenerationMode] = [.collab, .cloud, .naive]

    func validate() throws {
        let counts = clients.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if counts.isEmpty || counts.contains(where: { $0 == nil || $0! < 1 || $0! > 256 }) {
            throw ValidationError("--clients takes counts 1...256 separated by commas (got \(clients))")
        }
        if !Self.modes.contains(mode) { throw ValidationError("--mode must be one of \(Self.modes.map(\.rawValue).joined(separator: ", "))") }
        if maxTokens < 2 { throw ValidationError("--max-tokens must be at least 2 (latency needs two tokens)") }
        if let link {
            do { _ = try LinkSetting.parseList(link) } catch let error as BenchError { throw ValidationError(error.description) }
        }
    }

    func run() async throws {
        let modelPath = try modelOptions.resolvedModelPath()
        let split = try SplitDefault.resolve(splitOption, gguf: try GGUFFile(path: modelPath))
        let launcher = processes.launcher
        let counts = quick ? [1, 2] : clients.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let tokens = quick ? 8 : maxTokens
        let cloud = try CloudChild(launcher: launcher, arguments: ["--model", modelPath, "--split", "\(split)", "--threads", "1"],
                                   cpu: processes.cloudCPUPin)
        defer { cloud.stop() }
        let setting = try link.map { try LinkSetting.parseList($0)[0] }
        var emulator: LinkEmulator?
        if let setting {
            emulator = try await LinkEmulator.start(listen: HostPort(host: "127.0.0.1", port: 0),
                                                    target: HostPort(host: "127.0.0.1", port: cloud.port),
                                                    profile: LinkProfile(rttMs: setting.rtt_ms, rateMbit: setting.rate_mbit))
        }
        let address = emulator.map { "127.0.0.1:\($0.address.port)" } ?? cloud.address
        let prompts = InstructionSet.prompts
        var rounds: [ScaleRound] = []
        for n in counts {
            Console.status("bench scale: \(n) client\(n == 1 ? "" : "s")")
            let before = try await CloudHealth.probe(address: cloud.address, token: nil)
            let started = Date()
            var running: [(Process, TempFile, TempFile)] = []
            for i in 0..<n {
                let args = ["generate", "--chat", "--prompt", prompts[i % prompts.count], "--mode", mode.rawValue, "--cloud", address,
                            "--json", "--model", modelPath, "--threads", "1", "--split", "\(split)", "--max-tokens", "\(tokens)"]
                    + generateArgs
                let process = launcher.makeProcess(args, cpu: processes.edgeCPUPin)
                let out = try TempFile(prefix: "collm-scale-out"), err = try TempFile(prefix: "collm-scale-err")
                process.standardOutput = try out.writer()
                process.standardError = try err.writer()
                try process.run()
                running.append((process, out, err))
            }
            var peakCloud = 0.0
            let deadline = Date().addingTimeInterval(timeout)
            while running.contains(where: { $0.0.isRunning }) && Date() < deadline {
                peakCloud = max(peakCloud, cloud.memoryMiB.rss)
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            let wall = Date().timeIntervalSince(started)
            var outputs: [GenerateOutput] = []
            for (process, out, err) in running {
                if process.isRunning { process.terminate() }
                process.waitUntilExit()
                guard process.terminationStatus == 0, let line = out.contents.split(separator: "\n").last,
                      let output = try? JSONDecoder().decode(GenerateOutput.self, from: Data(line.utf8)) else {
                    throw CLIError("a client failed (status \(process.terminationStatus)): \(err.contents.suffix(300))")
                }
                outputs.append(output)
            }
            let health = try await CloudHealth.probe(address: cloud.address, token: nil).since(before)
            let round = ScaleRound(clients: n, outputs: outputs, wall: wall, health: health,
                                   cloudRSS: peakCloud, edgePeakRSS: childrenPeakRSSMiB())
            Console.status(String(format: "  %d clients: %.1f tok/s aggregate, p50 %.1f ms, p99 %.1f ms per token, %.2f sessions per batch",
                                  n, round.aggregate_tok_s, round.p50_token_ms, round.p99_token_ms, round.mean_batch_sessions))
            rounds.append(round)
        }
        await emulator?.stop()
        let report = ScaleReport(model_path: modelPath, mode: mode.rawValue, max_tokens: tokens, split: split, link: setting,
                                 generate_args: generateArgs, pinned: launcher.canPin && processes.edgeCPU >= 0,
                                 edge_cpu: processes.edgeCPUPin, cloud_cpu: processes.cloudCPUPin,
                                 rounds: rounds)
        try ScaleBenchOutput.write(report, to: URL(fileURLWithPath: processes.output))
        Console.status("bench scale: wrote \(processes.output)/scale.json, scale.md, scale-*.svg")
    }

    /// Largest peak RSS among waited-for children so far (the edges; the cloud is still running).
    private func childrenPeakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
