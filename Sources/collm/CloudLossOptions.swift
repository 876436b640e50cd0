import ArgumentParser
import Edge

extension CloudLossPolicy: ExpressibleByArgument {}

/// `--on-cloud-loss degrade|wait` and `--cloud-wait-s`: what an edge does when the cloud stops
/// answering (generate, serve, bench collab).
struct CloudLossOptions: ParsableArguments {
    @Option(name: .customLong("on-cloud-loss"),
            help: "When the cloud stops answering: degrade (go on at the edge, tokens marked degraded; announced on stderr) or wait (hold generation, reconnecting to any replica and replaying, up to --cloud-wait-s, then degrade). A cloud that refuses the edge (token, TLS, model or split) is an error either way.")
    var onCloudLoss: CloudLossPolicy = .degrade
    @Option(name: .customLong("cloud-wait-s"), help: "With --on-cloud-loss wait: the longest hold per outage, in seconds.")
    var cloudWaitSeconds: Double = 30

    func validate() throws {
        guard cloudWaitSeconds >= 0, cloudWaitSeconds.isFinite else { throw ValidationError("--cloud-wait-s must be a number >= 0") }
    }

    func apply(to options: inout EdgeOptions) {
        options.onCloudLoss = onCloudLoss
        options.cloudWaitSeconds = cloudWaitSeconds
    }

    /// The same options for a child `collm generate` (none when they are the defaults).
    var generateArguments: [String] {
        onCloudLoss == .degrade && cloudWaitSeconds == 30 ? []
            : ["--on-cloud-loss", onCloudLoss.rawValue, "--cloud-wait-s", "\(cloudWaitSeconds)"]
    }
}
