import Cloud
import CollabCore
import CollabProtocol
import CollabTransport
import Foundation
import GRPCCore
import LLM
import SwiftProtobuf

/// A sequence of edge messages through the cloud's session handler (`CloudService.session`, exactly what a
/// gRPC stream runs) on an in-process engine with the default model's layers [15, 30). Input: one flag byte
/// (bit 0: an OPEN whose fingerprint has at most one byte gets the model's, so inputs need not carry 32
/// bytes to get past admission), then messages as [16-bit little-endian length][protobuf EdgeMessage],
/// at most 16. Every session the input opened is closed afterwards, so inputs do not pile up state.
enum SessionFuzz {
    static let split = 15
    static let maxMessages = 16

    struct Engine: @unchecked Sendable {
        let engine: CloudEngine
        let service: CloudService
        let fingerprint: [UInt8]
    }

    nonisolated(unsafe) private static var cached: Engine?

    static func engine() throws -> Engine {
        if let cached { return cached }
        let file = try FuzzModel.shared.file
        let model = try LlamaModel(file: file, layers: split..<30, pool: ThreadPool(threadCount: 1))
        var limits = CloudLimits()
        // Small enough that one input stays fast, large enough for every code path (chunking included).
        limits.maxPositionsPerSession = 256
        limits.maxRowsPerAppend = 64
        limits.maxBatchRows = 32
        limits.memoryBudgetBytes = 256 << 20
        limits.maxDraftTokens = 16
        let fingerprint = file.fingerprint()
        let manager = ContextManager(model: model, fingerprint: fingerprint, limits: limits, splitLayer: split)
        let engine = CloudEngine(manager: manager)
        let parts = Engine(engine: engine, service: CloudService(engine: engine), fingerprint: fingerprint)
        cached = parts
        return parts
    }

    /// Collects what the handler answers.
    final class Replies: RPCWriterProtocol, @unchecked Sendable {
        private let lock = NSLock()
        private var messages: [Collm_V1_CloudMessage] = []

        func write(_ element: Collm_V1_CloudMessage) async throws {
            lock.withLock { messages.append(element) }
        }

        func write(contentsOf elements: some Sequence<Collm_V1_CloudMessage>) async throws {
            for element in elements { try await write(element) }
        }

        var all: [Collm_V1_CloudMessage] {
            lock.withLock { messages }
        }
    }

    static func messages(_ data: [UInt8], fingerprint: [UInt8]) -> [Collm_V1_EdgeMessage] {
        var input = FuzzInput(data)
        let flags = input.byte()
        var out: [Collm_V1_EdgeMessage] = []
        while !input.isEmpty, out.count < maxMessages {
            let length = Int(input.u16())
            guard var message = try? Collm_V1_EdgeMessage(serializedBytes: input.take(length)) else { continue }
            if flags & 1 != 0, case .open(var open)? = message.body, open.modelFingerprint.count <= 1 {
                open.modelFingerprint = Data(fingerprint)
                message.open = open
            }
            out.append(message)
        }
        return out
    }

    static func run(_ data: [UInt8]) {
        let parts: Engine
        do { parts = try engine() } catch { fatalError("session fuzz engine: \(error)") }
        let messages = messages(data, fingerprint: parts.fingerprint)
        let replies = Replies()
        let done = DispatchSemaphore(value: 0)
        let context = ServerContext(descriptor: Collm_V1_Collab.Method.Session.descriptor, remotePeer: "fuzz",
                                    localPeer: "fuzz", cancellation: ServerContext.RPCCancellationHandle())
        Task {
            let stream = AsyncThrowingStream<Collm_V1_EdgeMessage, any Error> { continuation in
                for message in messages { continuation.yield(message) }
                continuation.finish()
            }
            do {
                try await parts.service.session(request: RPCAsyncSequence(wrapping: stream),
                                                response: RPCWriter(wrapping: replies), context: context)
            } catch {
                // Only in-band errors are expected: a thrown error would end a client's stream.
                fatalError("the session handler threw \(error)")
            }
            for reply in replies.all {
                if case .opened(let opened)? = reply.body, let id = SessionID(bytes: Array(opened.sessionID)) {
                    try? await parts.engine.close(id, owner: "default")
                }
            }
            done.signal()
        }
        done.wait()
        for reply in replies.all {
            if case .token(let token)? = reply.body {
                fuzzCheck(token.tokenID < 49152 && token.logprob.isFinite && token.logprob <= 0, "token reply \(token)")
            }
        }
    }

    static func seeds() throws -> [[UInt8]] {
        let parts = try engine()
        let codec = try HiddenStateCodec(format: .f16, width: 576)
        let states = try codec.encode(HiddenStates(values: (0..<(576 * 3)).map { Float($0 % 23 - 11) / 8 }, width: 576))
        func open(_ wire: Collm_V1_WireFormat, fingerprint: [UInt8] = []) -> Collm_V1_EdgeMessage {
            .with {
                $0.requestID = 1
                $0.open = .with {
                    $0.protocolVersion = 1
                    $0.modelFingerprint = Data(fingerprint)
                    $0.splitLayer = UInt32(split)
                    $0.wire = wire
                    $0.maxPositions = 32
                }
            }
        }
        let append = Collm_V1_EdgeMessage.with {
            $0.requestID = 2
            $0.append = .with { $0.firstPosition = 0; $0.rows = 3; $0.states = Data(states) }
        }
        let infer = Collm_V1_EdgeMessage.with {
            $0.requestID = 3
            $0.infer = .with { $0.position = 2; $0.topLogprobs = 2; $0.historyTail = [1, 2, 3]; $0.sampling = .with { $0.temperature = 0.8; $0.seed = 1 } }
        }
        let verify = Collm_V1_EdgeMessage.with {
            $0.requestID = 4
            $0.verify = .with { $0.firstPosition = 1; $0.draftTokens = [5, 6] }
        }
        let truncate = Collm_V1_EdgeMessage.with { $0.requestID = 5; $0.truncate = .with { $0.position = 1 } }
        let close = Collm_V1_EdgeMessage.with { $0.requestID = 6; $0.close = .init() }
        func encode(_ flags: UInt8, _ messages: [Collm_V1_EdgeMessage]) throws -> [UInt8] {
            var out = [flags]
            for message in messages {
                let bytes: [UInt8] = try message.serializedBytes()
                out += [UInt8(bytes.count & 0xFF), UInt8(bytes.count >> 8)] + bytes
            }
            return out
        }
        return [
            try encode(1, [open(.f16), append, infer, verify, truncate, infer, close]),
            try encode(0, [open(.f16, fingerprint: parts.fingerprint), append, verify]),
            try encode(1, [infer, open(.q8), append, open(.f32), truncate]),
        ]
    }
}
