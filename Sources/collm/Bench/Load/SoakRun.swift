import Bench
import CollabCore
import CollabTransport
import Foundation
import LLM
import LinkEmulator

extension LoadBench {
    /// The soak (`--soak-minutes`): one cloud holding the whole model serves the largest `--users`
    /// count of closed-loop users for the given time, each request a recorded collab or spec session
    /// (virtual edges over real gRPC) or a cloud-only generation, in turn.
    func soak(minutes: Double, users: Int, split: Int, prompts: [[Int]], gguf: GGUFFile, tokenizer: Tokenizer,
              modelPath: String, tokenLimit: Int, launcher: ChildLauncher,
              emulate: (Int) async throws -> LinkEmulator) async throws -> SoakReport {
        Console.status("bench load: soak, recording \(prompts.count) collab and spec sessions at split \(split)")
        let (collab, _, _) = try await record(gguf: gguf, tokenizer: tokenizer, prompts: prompts, split: split,
                                              speculative: false, tokens: tokenLimit)
        let (spec, _, _) = try await record(gguf: gguf, tokenizer: tokenizer, prompts: prompts, split: split,
                                            speculative: true, tokens: tokenLimit)
        let cloud = try CloudChild(launcher: launcher, arguments: cloudArguments(modelPath: modelPath, split: split, fullModel: true),
                                   cpu: cloudCPU >= 0 ? cloudCPU : nil)
        defer { cloud.stop() }
        let emulator = try await emulate(cloud.port)
        let address = "127.0.0.1:\(emulator.address.port)"
        let connector = try GRPCConnector(address: address, token: nil)
        let open = OpenRequest(fingerprint: gguf.fingerprint(), splitLayer: split, wire: .f16, maxPositions: 2048)
        let fixed = zip(prompts, collab.map(\.tokens.count)).map { (prompt: $0, tokens: max(2, $1)) }
        let target = MixedTarget(targets: [ReplayTarget(sessions: collab, connector: connector, open: open),
                                           ReplayTarget(sessions: spec, connector: connector, open: open),
                                           CloudOnlyTarget(prompts: fixed, address: address)])
        let meter = ProcessMeter(pid: cloud.process.processIdentifier)
        let health = cloud.address
        let seconds = minutes * 60
        Console.status(String(format: "bench load: soak, %d users for %.1f min (collab, spec, cloud in turn)", users, minutes))

        // Samples every 10 s (and at the start) while the users run.
        let start = Date()
        let sampling = Task { () -> [SoakSample] in
            var samples: [SoakSample] = []
            while !Task.isCancelled {
                let sessions = try? await CloudHealth.probe(address: health, token: nil).sessions
                let sample = SoakSample(t_s: Date().timeIntervalSince(start), rss_mib: meter.rssMiB,
                                        open_fds: meter.openFileDescriptors, sessions: sessions)
                samples.append(sample)
                Console.progress(String(format: "  soak %.0f/%.0f s: cloud RSS %.0f MiB, %d open fds, %@ sessions",
                                        sample.t_s, seconds, sample.rss_mib, sample.open_fds, sessions.map(String.init) ?? "?"))
                try? await Task.sleep(nanoseconds: 10_000_000_000)
            }
            return samples
        }
        let generator = LoadGenerator(target: target, sessions: 3 * prompts.count)
        let (results, wall) = await generator.closedLoop(users: users, duration: seconds)
        sampling.cancel()
        var samples = await sampling.value
        samples.append(SoakSample(t_s: Date().timeIntervalSince(start), rss_mib: meter.rssMiB,
                                  open_fds: meter.openFileDescriptors,
                                  sessions: try? await CloudHealth.probe(address: health, token: nil).sessions))
        Console.endProgress()
        await emulator.stop()
        cloud.stop()

        let warm = samples.filter { $0.t_s >= min(60, seconds / 2) }
        let tokens = results.reduce(0) { $0 + $1.tokens }
        return SoakReport(minutes: minutes, users: users, modes: ["collab", "spec", "cloud"], requests: results.count,
                          errors: results.filter { $0.error != nil }.count, first_error: results.first { $0.error != nil }?.error,
                          tokens: tokens, tokens_per_s: Double(tokens) / max(wall, 1e-9),
                          rss_after_warmup_mib: warm.first?.rss_mib ?? 0, rss_end_mib: samples.last?.rss_mib ?? 0,
                          rss_max_after_warmup_mib: warm.map(\.rss_mib).max() ?? 0,
                          open_fds_max: samples.map(\.open_fds).max() ?? 0, samples: samples)
    }
}
