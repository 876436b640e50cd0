import ArgumentParser
import Bench

/// Where a benchmark that runs `collm` child processes writes, and which CPUs and binary they use.
struct ChildProcessOptions: ParsableArguments {
    @Option(name: .long, help: "Output folder.") var output = "bench-results"
    @Option(name: .customLong("edge-cpu"), help: "CPU for the edge processes (-1: no pinning).") var edgeCPU = 1
    @Option(name: .customLong("cloud-cpu"), help: "CPU for the cloud process (-1: no pinning).") var cloudCPU = 0
    @Option(name: .long, help: "collm binary for the child processes (default: this one).") var collm: String?

    /// The pinned CPUs, nil where pinning is off.
    var edgeCPUPin: Int? { edgeCPU >= 0 ? edgeCPU : nil }
    var cloudCPUPin: Int? { cloudCPU >= 0 ? cloudCPU : nil }

    var launcher: ChildLauncher { ChildLauncher(executable: collm) }
}
