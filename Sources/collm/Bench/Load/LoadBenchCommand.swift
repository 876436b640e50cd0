import ArgumentParser
import Bench
import Cloud
import CollabCore
import CollabTransport
import Edge
import Foundation
import LinkEmulator
import LLM

/// `collm bench load`: how many users one cloud core serves within a latency target, for collab,
/// spec, our cloud-only path and llama-server, each behind the same emulated link.
struct LoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Cloud capacity under load: virtual edges against one pinned cloud core (use a release build).",
        discussion: """
            First records real sessions: the real edge (default calibration, --split) answers --sessions chat \
            prompts against an in-process cloud, and each session's uploads, cloud requests (INFER, VERIFY), \
            edge compute times and token times are kept. Then, per mode and user count, N virtual users replay \
            sessions back to back through the link emulator against a cloud process pinned to --cloud-cpu, \
            waiting the recorded edge time instead of computing. cloud and llama-server users send the same \
            prompts and stream the same token counts. Reports tokens/s, TPOT and TTFT percentiles, errors, \
            cloud CPU-seconds per 1k tokens (/proc), cloud RSS and sessions per forward pass; capacity is the \
            most users with p99 TPOT <= --slo-ms, p99 TTFT <= --ttft-slo-ms and no errors. \
            Run the generator off the cloud's core, e.g. `taskset -c 1 collm bench load --cloud-cpu 0`. \
            llama-server comes from scripts/build-llama.sh (skipped with a message when absent). \
            Writes OUTPUT/load.json, load.md, load-tpot.svg, load-cpu.svg.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var chatTemplate: ChatTemplateOptions
    @Option(name: .long, help: "Modes, comma separated: collab, spec, cloud, llama-server.") var modes = "collab,spec,cloud,llama-server"
    @Option(name: .long, help: "Concurrent users per point (closed loop), comma separated.") var users = "1,2,4,8,16,32,64"
    @Option(name: .long, help: "Also run open-loop points: Poisson arrivals per second, comma separated.") var rates: String?
    @Option(name: .customLong("slo-ms"), help: "p99 time-per-output-token target.") var sloMs = 100.0
    @Option(name: .customLong("ttft-slo-ms"), help: "p99 time-to-first-token target.") var ttftSloMs = 2000.0
    @Option(name: .long, help: "Emulated link RTT_MS:MBIT between users and the cloud.") var link = "20:100"
    @Option(name: .customLong("cloud-cpu"), parsing: .unconditional, help: "CPU the cloud process is pinned to (-1: no pinning).") var cloudCPU = 0
    @Option(name: .long, help: "Splits for collab and spec, comma separated (default: the default split, two thirds of the layers).") var splits: String?
    @Option(name: .long, help: "Sessions to record (distinct prompts).") var sessions = 16
    @Option(name: .customLong("max-tokens"), help: "Tokens per response at most.") var maxTokens = 64
    @Option(name: .long, help: "Seconds per point (users keep sending until then; each sends at least once).") var duration = 20.0
    @Option(name: .customLong("max-batch-rows"), help: "The cloud's row budget per forward pass.") var maxBatchRows = CloudLimits().maxBatchRows
    @Option(name: .customLong("llama-server"), help: "llama-server binary (default: .cache/llama.cpp/build/bin/llama-server).") var llamaServer: String?
    @Option(name: .long, help: "Output folder.") var output = "bench-results"
    @Option(name: .long, help: "collm binary for the cloud process (default: this one).") var collm: String?
    @Option(name: .customLong("soak-minutes"), help: "Soak instead of a sweep: one cloud holding the whole model serves the largest --users count for this many minutes, requests going to recorded collab and spec sessions and cloud-only generations in turn; reports errors and the cloud's RSS and open descriptors over time (bench-results/soak.json, soak.md).")
    var soakMinutes: Double?
    @Flag(name: .long, help: "Smoke run: users 1,2, 2 sessions of 8 tokens, one request per user.") var quick = false
    @Flag(name: .long, help: "Print the report as one JSON object.") var json = false

    static let knownModes = ["collab", "spec", "cloud", "llama-server"]

    func validate() throws {
        let list = modes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        if list.isEmpty || list.contains(where: { !Self.knownModes.contains($0) }) {
            throw ValidationError("--modes takes \(Self.knownModes.joined(separator: ", ")) (got \(modes))")
        }
        _ = try counts(users, option: "--users", range: 1...512)
        if let splits { _ = try counts(splits, option: "--splits", range: 1...1000) }
        if let rates { _ = try rateList(rates) }
        if !(sloMs > 0) || !(ttftSloMs > 0) { throw ValidationError("--slo-ms and --ttft-slo-ms must be positive") }
        if sessions < 1 || maxTokens < 2 { throw ValidationError("--sessions must be >= 1 and --max-tokens >= 2") }
        if !(duration >= 0) { throw ValidationError("--duration must be >= 0") }
        if let soakMinutes, !(soakMinutes > 0 && soakMinutes <= 24 * 60) { throw ValidationError("--soak-minutes must be in (0, 1440]") }
        do { _ = try LinkSetting.parseList(link) } catch let error as BenchError { throw ValidationError(error.description) }
    }

    private func counts(_ text: String, option: String, range: ClosedRange<Int>) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && range.contains($0!) }) else {
            throw ValidationError("\(option) takes numbers in \(range.lowerBound)...\(range.upperBound) separated by commas (got \(text))")
        }
        return values.map { $0! }
    }

    private func rateList(_ text: String) throws -> [Double] {
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! > 0 && $0!.isFinite }) else {
            throw ValidationError("--rates takes positive arrival rates separated by commas (got \(text))")
        }
        return values.map { $0! }
    }

    func run() async throws {
        let modeList = modes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        let userCounts = quick ? [1, 2] : try counts(users, option: "--users", range: 1...512)
        let sessionCount = quick ? 2 : sessions
        let tokenLimit = quick ? 8 : maxTokens
        let seconds = quick ? 0 : duration
        let rateValues = try rates.map(rateList) ?? []
        let setting = try LinkSetting.parseList(link)[0]
        let (gguf, tokenizer) = try modelOptions.openModelFile()
        let modelPath = try modelOptions.resolvedModelPath()
        let format = try chatTemplate.chatFormat(gguf: gguf, tokenizer: tokenizer)
        let prompts = InstructionSet.prompts.prefix(sessionCount).map {
            tokenizer.encode(format.render(user: $0), addSpecial: true, parseSpecial: true)
        }
        let splitList = try splits.map { try self.counts($0, option: "--splits", range: 1...1000) } ?? [SplitDefault.resolve(nil, gguf: gguf)]
        let launcher = ChildLauncher(executable: collm)
        var results: [LoadModeResult] = []
        var tokenCounts: [Int]?
        // Every peer sits behind the same emulated link.
        let emulate = { (port: Int) in
            try await LinkEmulator.start(listen: HostPort(host: "127.0.0.1", port: 0), target: HostPort(host: "127.0.0.1", port: port),
                                         profile: LinkProfile(rttMs: setting.rtt_ms, rateMbit: setting.rate_mbit))
        }

        if let soakMinutes {
            let split = splitList[0]
            let report = try await soak(minutes: soakMinutes, users: userCounts.max() ?? 1, split: split, prompts: prompts,
                                        gguf: gguf, tokenizer: tokenizer, modelPath: modelPath, tokenLimit: tokenLimit,
                                        launcher: launcher, emulate: emulate)
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: output).appendingPathComponent("soak.json"))
            try report.markdown.write(toFile: (output as NSString).appendingPathComponent("soak.md"), atomically: true, encoding: String.Encoding.utf8)
            Console.status("bench load: wrote \(output)/soak.json, soak.md")
            if json { try Console.printJSON(report) } else { print(report.markdown) }
            if report.errors > 0 { throw BenchError("soak: \(report.errors) of \(report.requests) requests failed") }
            return
        }
        let sweep = { (label: String, target: LoadTarget, meter: ProcessMeter, health: String?) async throws -> [LoadPoint] in
            var points: [LoadPoint] = []
            let generator = LoadGenerator(target: target, sessions: sessionCount)
            for n in userCounts {
                let point = try await measure(label: label, users: n, rate: nil, meter: meter, health: health) {
                    await generator.closedLoop(users: n, duration: seconds)
                }
                points.append(point)
                // Far past the SLO, more users only take longer to say the same.
                if point.tpot_p99_ms > 3 * sloMs || point.ttft_p99_ms > 3 * ttftSloMs { break }
            }
            for rate in rateValues {
                points.append(try await measure(label: label, users: 0, rate: rate, meter: meter, health: health) {
                    await generator.openLoop(rate: rate, duration: max(seconds, 5))
                })
            }
            return points
        }

        for split in splitList {
            for mode in modeList where mode == "collab" || mode == "spec" {
                Console.status("bench load: recording \(sessionCount) \(mode) sessions at split \(split)")
                let (recorded, edgeShare, note) = try await record(gguf: gguf, tokenizer: tokenizer, prompts: prompts,
                                                                   split: split, speculative: mode == "spec", tokens: tokenLimit)
                if tokenCounts == nil { tokenCounts = recorded.map(\.tokens.count) }
                let cloud = try CloudChild(launcher: launcher, arguments: cloudArguments(modelPath: modelPath, split: split, fullModel: false),
                                           cpu: cloudCPU >= 0 ? cloudCPU : nil)
                defer { cloud.stop() }
                let emulator = try await emulate(cloud.port)
                let connector = try GRPCConnector(address: "127.0.0.1:\(emulator.address.port)", token: nil)
                let open = OpenRequest(fingerprint: gguf.fingerprint(), splitLayer: split, wire: .f16, maxPositions: 2048)
                var points = try await sweep("\(mode) s\(split)", ReplayTarget(sessions: recorded, connector: connector, open: open),
                                             ProcessMeter(pid: cloud.process.processIdentifier), cloud.address)
                let requests = recorded.reduce(0) { $0 + $1.cloudRequests }, generated = recorded.reduce(0) { $0 + $1.tokens.count }
                for k in points.indices { points[k].round_trips_per_token = Double(requests) / Double(max(1, generated)) }
                await emulator.stop()
                cloud.stop()
                results.append(LoadModeResult(mode: mode, split: split, capacity_users: LoadReport.capacity(points, sloMs: sloMs, ttftSloMs: ttftSloMs),
                                              capacity_rate: capacityRate(points), points: points, edge_token_share: edgeShare, note: note))
            }
        }
        let counts = tokenCounts ?? Array(repeating: tokenLimit, count: prompts.count)
        let fixed = zip(prompts, counts).map { (prompt: $0, tokens: max(2, $1)) }
        if modeList.contains("cloud") {
            let cloud = try CloudChild(launcher: launcher, arguments: cloudArguments(modelPath: modelPath, split: splitList[0], fullModel: true),
                                       cpu: cloudCPU >= 0 ? cloudCPU : nil)
            defer { cloud.stop() }
            let emulator = try await emulate(cloud.port)
            let points = try await sweep("cloud", CloudOnlyTarget(prompts: fixed, address: "127.0.0.1:\(emulator.address.port)"),
                                         ProcessMeter(pid: cloud.process.processIdentifier), cloud.address)
            await emulator.stop()
            cloud.stop()
            results.append(LoadModeResult(mode: "cloud", split: nil, capacity_users: LoadReport.capacity(points, sloMs: sloMs, ttftSloMs: ttftSloMs),
                                          capacity_rate: capacityRate(points), points: points))
        }
        if modeList.contains("llama-server") {
            let binary = llamaServer ?? (ModelStore.defaultCacheDirectory() as NSString)
                .appendingPathComponent("llama.cpp/build/bin/llama-server")
            if !FileManager.default.isExecutableFile(atPath: binary) {
                let note = "skipped: no llama-server at \(binary) (build it with scripts/build-llama.sh)"
                Console.status("bench load: llama-server \(note)")
                results.append(LoadModeResult(mode: "llama-server", split: nil, capacity_users: 0, points: [], note: note))
            } else {
                let slots = max(userCounts.max() ?? 1, 1)
                let context = (fixed.map { $0.prompt.count + $0.tokens }.max() ?? 256) + 16
                let server = try LlamaServerChild(binary: binary, model: modelPath, slots: slots, contextPerSlot: context,
                                                  cpu: cloudCPU >= 0 ? cloudCPU : nil, launcher: launcher)
                defer { server.stop() }
                let emulator = try await emulate(server.port)
                let points = try await sweep("llama-server", LlamaServerTarget(prompts: fixed, port: emulator.address.port),
                                             ProcessMeter(pid: server.process.processIdentifier), nil)
                await emulator.stop()
                server.stop()
                results.append(LoadModeResult(mode: "llama-server", split: nil, capacity_users: LoadReport.capacity(points, sloMs: sloMs, ttftSloMs: ttftSloMs),
                                              capacity_rate: capacityRate(points), points: points,
                                              note: "llama-server -t 1 -np \(slots) (continuous batching), streaming /completion"))
            }
        }
        let report = LoadReport(slo_ms: sloMs, ttft_slo_ms: ttftSloMs, link: setting.label, cloud_cpu: cloudCPU >= 0 ? cloudCPU : nil,
                                model_path: modelPath, sessions: sessionCount, duration_s: seconds, modes: results)
        try report.write(to: URL(fileURLWithPath: output))
        Console.status("bench load: wrote \(output)/load.json, load.md, load-tpot.svg, load-cpu.svg")
        if json { try Console.printJSON(report) } else { print(report.markdown) }
    }

    private func capacityRate(_ points: [LoadPoint]) -> Double? {
        points.filter { $0.rate != nil && $0.meets(sloMs: sloMs, ttftSloMs: ttftSloMs) }.compactMap(\.rate).max()
    }

    func cloudArguments(modelPath: String, split: Int, fullModel: Bool) -> [String] {
        ["--model", modelPath, "--split", "\(split)", "--threads", "1", "--max-batch-rows", "\(maxBatchRows)",
         "--activations", modelOptions.activations.rawValue] + (fullModel ? [] : ["--no-full-model"])
    }

    /// One point: runs the load while sampling the cloud's memory, and reads its CPU time and pass counters around it.
    private func measure(label: String, users: Int, rate: Double?, meter: ProcessMeter, health address: String?,
                         load: () async -> (samples: [RequestSample], wall: Double)) async throws -> LoadPoint {
        Console.status("bench load: \(label), " + (rate.map { String(format: "%.1f arrivals/s", $0) } ?? "\(users) user\(users == 1 ? "" : "s")"))
        let before = try await address.asyncMap { try await CloudHealth.probe(address: $0, token: nil) }
        let cpuBefore = meter.cpuSeconds
        let peak = PeakSampler(meter: meter)
        let (samples, wall) = await load()
        let rss = peak.stop()
        let cpu = meter.cpuSeconds - cpuBefore
        var perPass: Double?
        if let address, let before {
            let delta = try await CloudHealth.probe(address: address, token: nil).since(before)
            perPass = delta.batches > 0 ? Double(delta.batchedSessions) / Double(delta.batches) : nil
        }
        let point = LoadPoint(users: users, rate: rate, samples: samples, wall: wall, cpuSeconds: cpu, rssMiB: rss, sessionsPerPass: perPass)
        Console.status(String(format: "  %.1f tok/s, TPOT p50 %.1f p99 %.1f ms, TTFT p99 %.0f ms, %d errors, %.2f CPU-s/1k tokens%@",
                              point.tokens_per_s, point.tpot_p50_ms, point.tpot_p99_ms, point.ttft_p99_ms, point.errors,
                              point.cloud_cpu_s_per_1k_tokens, point.first_error.map { " (first error: \($0.prefix(160)))" } ?? ""))
        return point
    }

    /// Records real edge sessions against an in-process cloud.
    func record(gguf: GGUFFile, tokenizer: Tokenizer, prompts: [[Int]], split: Int, speculative: Bool,
                        tokens: Int) async throws -> ([RecordedSession], Double, String?) {
        let config = try ModelConfig(gguf: gguf)
        let fingerprint = gguf.fingerprint()
        let cloudModel = try LlamaModel(file: gguf, layers: split..<config.layerCount, activations: modelOptions.activations,
                                        pool: ThreadPool(threadCount: 1))
        let engine = CloudEngine(manager: ContextManager(model: cloudModel, fingerprint: fingerprint))
        defer { engine.shutdown() }
        let recorder = RecordingConnector(inner: InProcessConnector(engine: engine, owner: "recorder"))
        let setup = try EdgeSetup(gguf: gguf, tokenizer: tokenizer, mode: speculative ? .spec : .collab, split: split,
                                  activations: modelOptions.activations, threads: 1)
        var options = setup.options
        options.maxTokens = tokens
        let note = setup.calibrationPath == nil
            ? "no calibration for split \(split): the edge decides no tokens (run collm calibrate --split \(split))"
            : "calibration \(setup.calibrationPath!)"
        if setup.calibrationPath == nil { Console.status("bench load: \(note)") }
        var sessions: [RecordedSession] = []
        var (edge, total) = (0, 0)
        for (k, prompt) in prompts.enumerated() {
            recorder.begin()
            let result = try await setup.makeRunner(connector: recorder, options: options)
                .generate(prompt: prompt, onPiece: { _, _ in }).result
            sessions.append(recorder.finish(prompt: prompt, tokenSeconds: result.tokenSeconds, sampling: options.sampling))
            edge += result.sources.filter { $0 != .cloud }.count  // decided on the edge, degraded or not
            total += result.tokens.count
            Console.progress("  recorded \(k + 1)/\(prompts.count) sessions")
        }
        Console.endProgress()
        return (sessions, Double(edge) / Double(max(1, total)), note)
    }
}

/// Samples a process's resident memory every 50 ms until stopped; returns the peak (MiB).
private final class PeakSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0.0
    private var running = true

    init(meter: ProcessMeter) {
        peak = meter.rssMiB
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let rss = meter.rssMiB
                lock.withLock { peak = max(peak, rss) }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    func stop() -> Double {
        lock.withLock {
            running = false
            return peak
        }
    }
}

extension Optional {
    fileprivate func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
