import LLM

/// The naive baseline's cloud (the paper's split without a context manager): every step carries the
/// boundary states of the whole context, and the cloud recomputes its layers over them and keeps
/// nothing. One link serves one generation's steps.
public protocol NaiveCloudLink: AnyObject, Sendable {
    /// Sends `rows` boundary states (positions 0..<rows, encoded as `wire`) and returns the token after them.
    func step(rows: Int, states: [UInt8], wire: WireFormat, sampling: SamplingParameters) async throws -> TokenReply
    func close() async
    /// Bytes sent and received so far, including framing; `networkSeconds` is the time spent waiting on replies.
    var traffic: LinkTraffic { get }
}

/// The cloud-only baseline: the prompt goes to the cloud, which runs the whole model and streams
/// its tokens until one of `stopTokens` or `maxTokens`.
public protocol CloudGenerationLink: Sendable {
    /// Calls `onToken` for every token the cloud streams (a stop token included) and returns the traffic.
    func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stopTokens: Set<Int>,
                  onToken: (TokenReply) -> Void) async throws -> LinkTraffic
}
