import CollabTransport
import Foundation
import LinkEmulator
import LLM

/// Executes a `CollabBenchPlan`: owns the cloud child and the link emulator for the whole run,
/// runs each generation as a pinned child and attributes the link's and the cloud's counters to it
/// (runs are sequential, so the counters' growth around a run is that run's).
package struct CollabBenchRunner {
    package let plan: CollabBenchPlan

    package init(plan: CollabBenchPlan) throws { self.plan = plan }

    package func run() async throws -> CollabBenchReport {
        let needsCloud = plan.modes.contains { $0.needsCloud }
        let cloud = needsCloud ? try CloudChild(launcher: plan.launcher, arguments: cloudArguments, cpu: plan.cloudCPU) : nil
        defer { cloud?.stop() }
        var link: LinkEmulator?
        if let cloud {
            link = try await LinkEmulator.start(listen: HostPort(host: "127.0.0.1", port: 0),
                                                target: HostPort(host: "127.0.0.1", port: cloud.port),
                                                profile: LinkProfile(rttMs: plan.links[0].rtt_ms, rateMbit: plan.links[0].rate_mbit))
        }
        var records: [CollabRunRecord] = []
        var summaries: [CollabSummary] = []
        var errors: [String] = []
        var references: [String: GenerateOutput] = [:]
        let configurations = plan.configurations
        let total = configurations.count * plan.prompts.count
        var done = 0
        for (mode, setting, threshold) in configurations {
            if let setting, let link { try await link.setProfile(LinkProfile(rttMs: setting.rtt_ms, rateMbit: setting.rate_mbit)) }
            let label = [mode.rawValue, setting?.label, threshold.map { "threshold \($0)" }].compactMap { $0 }.joined(separator: ", ")
            var runs: [CollabRunRecord] = []
            var failed = 0
            for prompt in plan.prompts {
                Console.progress("\(Console.bar(done, total)) \(done)/\(total) \(label): \(prompt.id)")
                do {
                    var record = try await runOne(prompt, mode: mode, link: setting, threshold: threshold,
                                                  via: link, cloud: cloud)
                    if mode == .local { references[prompt.id] = record.output }
                    score(&record, prompt: prompt, reference: references[prompt.id])
                    runs.append(record)
                } catch {
                    failed += 1
                    errors.append("\(label), \(prompt.id): \(error)")
                }
                done += 1
            }
            let summary = CollabSummary(runs, mode: mode.rawValue, link: setting?.name, threshold: threshold, errors: failed)
            Console.endProgressLine()
            Console.status(String(format: "%@: %.3f s/response, %.0f bytes, %.1f round trips, cloud tokens %.0f%%, agreement %.2f",
                                  label, summary.total_s, summary.bytes_per_response, summary.round_trips,
                                  summary.cloud_token_share * 100, summary.token_agreement))
            summaries.append(summary)
            records += runs
        }
        await link?.stop()
        let setup = CollabBenchReport.Setup(
            model_path: plan.modelPath, layers: plan.layers, split: plan.split, exits: plan.exits, wire: plan.wire,
            max_tokens: plan.maxTokens, qa_max_tokens: plan.qaMaxTokens, generate_args: plan.generateArgs,
            modes: plan.modes.map(\.rawValue), links: plan.links, thresholds: plan.thresholds,
            prompts: plan.prompts.count, qa_prompts: plan.prompts.filter { $0.kind == "qa" }.count,
            pinned: plan.launcher.canPin && (plan.edgeCPU != nil || plan.cloudCPU != nil),
            edge_cpu: plan.edgeCPU, cloud_cpu: plan.cloudCPU, quick: plan.quick, wall_seconds: 0)
        return CollabBenchReport(setup: setup, summaries: summaries, runs: records, errors: errors)
    }

    private var cloudArguments: [String] {
        ["--model", plan.modelPath, "--split", "\(plan.split)", "--threads", "\(plan.threads)"]
    }

    /// `collm generate` arguments for one run; the mode's own flags, then the user's extras.
    package func generateArguments(_ prompt: BenchPrompt, mode: GenerationMode, threshold: BenchThreshold?, cloud: String?) -> [String] {
        var args = ["generate", "--chat", "--prompt", prompt.text, "--mode", mode.rawValue, "--json",
                    "--model", plan.modelPath, "--threads", "\(plan.threads)",
                    "--max-tokens", "\(prompt.kind == "qa" ? plan.qaMaxTokens : plan.maxTokens)"]
        if mode != .local && mode != .cloud { args += ["--split", "\(plan.split)", "--wire", plan.wire] }
        if let threshold, !plan.exits.isEmpty {
            // "calibration": the calibrated exits of `collm calibrate` (the default file, or --generate-arg --calibration FILE).
            if plan.exits != "calibration" { args += ["--exits", plan.exits] }
            args += threshold.generateArguments
        }
        if let cloud { args += ["--cloud", cloud] }
        return args + plan.generateArgs
    }

    private func runOne(_ prompt: BenchPrompt, mode: GenerationMode, link setting: LinkSetting?, threshold: BenchThreshold?,
                        via link: LinkEmulator?, cloud: CloudChild?) async throws -> CollabRunRecord {
        let viaLink = mode.needsCloud ? link : nil
        let before = try await viaLink?.status()
        let healthBefore = mode.needsCloud ? try await CloudHealth.probe(address: cloud!.address, token: nil) : nil
        let args = generateArguments(prompt, mode: mode, threshold: threshold,
                                     cloud: viaLink.map { "127.0.0.1:\($0.address.port)" })
        let result = try plan.launcher.run(args, cpu: plan.edgeCPU, timeout: plan.timeout)
        guard result.status == 0 else {
            throw BenchError("collm generate exited \(result.status): \(result.err.split(separator: "\n").suffix(3).joined(separator: " | "))")
        }
        guard let line = result.out.split(separator: "\n").last,
              let output = try? JSONDecoder().decode(GenerateOutput.self, from: Data(line.utf8)) else {
            throw BenchError("collm generate printed no JSON object: \(result.out.prefix(200))")
        }
        var record = CollabRunRecord(prompt_id: prompt.id, kind: prompt.kind, mode: mode.rawValue, link: setting?.name,
                                     threshold: threshold, output: output)
        if let viaLink, let before, let healthBefore {
            // Let the last bytes (the stream's close) cross the emulated link before reading its counters.
            try await Task.sleep(nanoseconds: UInt64((setting?.rtt_ms ?? 0) * 1e6) + 5_000_000)
            let after = try await viaLink.status()
            record.link_bytes_up = after.bytes_up - before.bytes_up
            record.link_bytes_down = after.bytes_down - before.bytes_down
            let health = try await CloudHealth.probe(address: cloud!.address, token: nil).since(healthBefore)
            record.cloud_split_rows = health.batchedRows
            record.cloud_full_rows = health.fullModelRows
        }
        let edgeLayers = mode == .local ? plan.layers : (mode == .cloud ? 0 : plan.split)
        record.edge_layer_work = record.positions * edgeLayers
        record.cloud_layer_work = record.cloud_split_rows * (plan.layers - plan.split) + record.cloud_full_rows * plan.layers
        return record
    }

    private func score(_ record: inout CollabRunRecord, prompt: BenchPrompt, reference: GenerateOutput?) {
        if prompt.kind == "qa" { record.qa_correct = prompt.isCorrect(record.output.text) }
        guard let reference else { return }
        record.token_agreement = TextMetrics.tokenAgreement(record.output.tokens, reference: reference.tokens)
        record.exact_match = record.output.tokens == reference.tokens
        record.rouge_l = TextMetrics.rougeL(record.output.text, reference: reference.text)
    }
}
