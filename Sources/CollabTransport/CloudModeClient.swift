import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LLM
import SwiftProtobuf

/// The `cloud` baseline from the edge's side: send the prompt, receive the tokens.
public struct CloudModeClient {
    let connector: GRPCConnector

    public init(address: String, token: String?, trustRoots: String? = nil) throws {
        connector = try GRPCConnector(address: address, token: token, trustRoots: trustRoots)
    }

    public struct Output: Sendable {
        public var tokens: [Int] = []
        public var logprobs: [Float] = []
        public var text = ""
        public var bytesUp = 0
        public var bytesDown = 0
        public var cloudSeconds = 0.0
        public var firstTokenSeconds = 0.0
        public var totalSeconds = 0.0
        public var stoppedAtEOS = false
    }

    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters, stopTokens: Set<Int>,
                         tokenizer: Tokenizer, onText: @escaping @Sendable (String) -> Void) async throws -> Output {
        let transport = try connector.makeTransport()
        let request = Collm_V1_CloudGenerateRequest.with {
            $0.promptTokens = prompt.map { UInt32($0) }
            $0.maxTokens = UInt32(maxTokens)
            $0.sampling = sampling.proto
            $0.stopTokens = stopTokens.map { UInt32($0) }
        }
        // One request is one stream: a fresh routing key lets a balancer spread requests over replicas.
        let metadata = connector.metadata(routingKey: RoutingKey.random())
        let start = Date()
        let upBytes = (try request.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
        return try await withGRPCClient(transport: transport) { client in
            try await Collm_V1_Collab.Client(wrapping: client).cloudGenerate(
                request: ClientRequest(message: request, metadata: metadata)
            ) { response in
                var out = Output()
                out.bytesUp = upBytes
                var decoder = StreamingDecoder(tokenizer: tokenizer)
                for try await event in response.messages {
                    out.bytesDown += (try event.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
                    out.cloudSeconds += event.token.stats.cloudSeconds
                    let token = Int(event.token.tokenID)
                    if out.tokens.isEmpty && out.firstTokenSeconds == 0 { out.firstTokenSeconds = Date().timeIntervalSince(start) }
                    if stopTokens.contains(token) {
                        out.stoppedAtEOS = true
                        continue
                    }
                    out.tokens.append(token)
                    out.logprobs.append(event.token.logprob)
                    let piece = decoder.append(token)
                    out.text += piece
                    if !piece.isEmpty { onText(piece) }
                }
                let tail = decoder.finish()
                out.text += tail
                if !tail.isEmpty { onText(tail) }
                out.totalSeconds = Date().timeIntervalSince(start)
                return out
            }
        }
    }
}
