import Edge
import Foundation
import LLM
import Prometheus

/// Prometheus metrics of the edge API, in a registry owned by the server (no global state).
public final class ServeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let requests: Counter
    private let failures: Counter
    private let edgeTokens: Counter
    private let cloudTokens: Counter
    private let degradedTokens: Counter
    private let promptTokens: Counter
    private let bytesUp: Counter
    private let bytesDown: Counter
    private let latency: DurationHistogram
    private let cloudDegraded: Gauge
    private let degradationEpisodes: Counter
    private let queueRejections: Counter
    private let cancellations: Counter

    public init() {
        requests = registry.makeCounter(name: "collm_requests_total", help: "Completions served")
        failures = registry.makeCounter(name: "collm_request_errors_total", help: "Requests answered with an error")
        edgeTokens = registry.makeCounter(name: "collm_generated_tokens_total", labels: [("source", "edge")],
                                          help: "Generated tokens by who decided them")
        cloudTokens = registry.makeCounter(name: "collm_generated_tokens_total", labels: [("source", "cloud")],
                                           help: "Generated tokens by who decided them")
        degradedTokens = registry.makeCounter(name: "collm_generated_tokens_total", labels: [("source", "degraded")],
                                              help: "Generated tokens by who decided them")
        promptTokens = registry.makeCounter(name: "collm_prompt_tokens_total", help: "Prompt tokens processed")
        bytesUp = registry.makeCounter(name: "collm_network_bytes_total", labels: [("direction", "up")],
                                       help: "Bytes exchanged with the cloud")
        bytesDown = registry.makeCounter(name: "collm_network_bytes_total", labels: [("direction", "down")],
                                         help: "Bytes exchanged with the cloud")
        latency = registry.makeDurationHistogram(
            name: "collm_request_duration_seconds",
            buckets: [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                      .seconds(2), .seconds(5), .seconds(10), .seconds(30)],
            help: "Time to serve a completion")
        cloudDegraded = registry.makeGauge(name: "collm_cloud_degraded",
                                           help: "1 while the cloud is unreachable and the edge answers alone (degraded), else 0")
        degradationEpisodes = registry.makeCounter(name: "collm_cloud_degraded_episodes_total",
                                                   help: "Times the cloud became unreachable")
        queueRejections = registry.makeCounter(name: "collm_requests_rejected_total", labels: [("reason", "queue_full")],
                                               help: "Requests refused with 503 because the queue was full")
        cancellations = registry.makeCounter(name: "collm_requests_cancelled_total",
                                             help: "Generations stopped because the client disconnected")
    }

    func record(sources: [TokenSource], promptTokens prompt: Int, bytesUp up: Int, bytesDown down: Int, seconds: Double) {
        requests.increment()
        promptTokens.increment(by: Int64(prompt))
        for source in sources {
            switch source {
            case .degraded: degradedTokens.increment()
            case .cloud: cloudTokens.increment()
            case .edge, .local: edgeTokens.increment()
            }
        }
        bytesUp.increment(by: Int64(up))
        bytesDown.increment(by: Int64(down))
        latency.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    func recordFailure() { failures.increment() }

    func recordQueueFull() { queueRejections.increment() }

    func recordCancellation() { cancellations.increment() }

    /// A degradation episode began or ended (`CloudOutageMonitor`).
    public func record(_ event: CloudOutageMonitor.Event) {
        switch event {
        case .began:
            cloudDegraded.set(to: 1.0)
            degradationEpisodes.increment()
        case .ended:
            cloudDegraded.set(to: 0.0)
        }
    }

    /// The text exposition format.
    public func exposition() -> String { registry.emitToString() }
}
