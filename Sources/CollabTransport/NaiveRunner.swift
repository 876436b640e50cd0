import CollabCore
import CollabProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LLM
import SwiftProtobuf

/// The paper's naive split baseline: the edge runs layers [0, s) and, for every token, sends the
/// boundary states of the whole context to the cloud, which keeps nothing between steps.
public struct NaiveRunner {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let connector: GRPCConnector
    let fingerprint: [UInt8]
    let wire: WireFormat

    public init(model: LlamaModel, tokenizer: Tokenizer, address: String, token: String?, trustRoots: String? = nil, fingerprint: [UInt8],
                wire: WireFormat) throws {
        self.model = model
        self.tokenizer = tokenizer
        connector = try GRPCConnector(address: address, token: token, trustRoots: trustRoots)
        self.fingerprint = fingerprint
        self.wire = wire
    }

    public struct Output: Sendable {
        public var tokens: [Int] = []
        public var logprobs: [Float] = []
        public var text = ""
        public var bytesUp = 0
        public var bytesDown = 0
        public var roundTrips = 0
        public var edgeSeconds = 0.0
        public var cloudSeconds = 0.0
        public var networkSeconds = 0.0
        public var firstTokenSeconds = 0.0
        public var totalSeconds = 0.0
        public var stoppedAtEOS = false
    }

    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingParameters,
                         onText: @escaping @Sendable (String) -> Void) async throws -> Output {
        let transport = try connector.makeTransport()
        // Every step of one generation carries the same routing key (the steps are stateless, but stay together).
        let metadata = connector.metadata(routingKey: RoutingKey.random())
        let codec = try HiddenStateCodec(format: wire, width: model.config.hiddenSize)
        let stops = TextGenerator.stopTokens(of: tokenizer)
        let cache = model.makeCache(capacity: min(model.config.contextLength, prompt.count + maxTokens + 1))
        let (model, fingerprint, wire, tokenizer) = (self.model, self.fingerprint, self.wire, self.tokenizer)
        return try await withGRPCClient(transport: transport) { client in
            let collab = Collm_V1_Collab.Client(wrapping: client)
            var out = Output()
            var states: [UInt8] = []
            var input = prompt
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            let start = Date()
            while out.tokens.count < maxTokens {
                let edgeStart = Date()
                var hidden = try model.embed(input)
                try model.forward(&hidden, cache: cache)
                states += try codec.encode(hidden)
                out.edgeSeconds += Date().timeIntervalSince(edgeStart)
                let rows = cache.count
                let request = Collm_V1_NaiveStepRequest.with {
                    $0.positionCount = UInt64(rows)
                    $0.rows = UInt32(rows)
                    $0.wire = wire.proto
                    $0.states = Data(states)
                    $0.sampling = sampling.proto
                    $0.modelFingerprint = Data(fingerprint)
                    $0.splitLayer = UInt32(model.layers.upperBound)
                }
                out.bytesUp += (try request.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
                let callStart = Date()
                let reply = try await collab.naiveStep(request: ClientRequest(message: request, metadata: metadata))
                out.networkSeconds += Date().timeIntervalSince(callStart) - reply.stats.cloudSeconds
                out.cloudSeconds += reply.stats.cloudSeconds
                out.bytesDown += (try reply.serializedBytes() as [UInt8]).count + GRPCCloudLink.framing
                out.roundTrips += 1
                if out.firstTokenSeconds == 0 { out.firstTokenSeconds = Date().timeIntervalSince(start) }
                let token = Int(reply.tokenID)
                if stops.contains(token) {
                    out.stoppedAtEOS = true
                    break
                }
                out.tokens.append(token)
                out.logprobs.append(reply.logprob)
                let piece = decoder.append(token)
                out.text += piece
                if !piece.isEmpty { onText(piece) }
                input = [token]
            }
            let tail = decoder.finish()
            out.text += tail
            if !tail.isEmpty { onText(tail) }
            out.totalSeconds = Date().timeIntervalSince(start)
            return out
        }
    }
}
