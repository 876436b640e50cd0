import CollabCore
import LLM

/// What every edge runner holds: the edge model with its head, the options, the codec for the
/// states it uploads and, when a cloud is configured, the session client.
struct EdgeParts {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let options: EdgeOptions
    let codec: HiddenStateCodec
    let cloud: CloudSessionClient?

    init(model: LlamaModel, tokenizer: Tokenizer, fingerprint: [UInt8], options: EdgeOptions, connector: CloudConnector?) throws {
        precondition(model.hasEmbeddings && model.hasHead, "the edge needs embeddings and the head")
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        codec = try HiddenStateCodec(format: options.wire, width: model.config.hiddenSize)
        cloud = connector.map {
            CloudSessionClient(connector: $0, fingerprint: fingerprint, splitLayer: model.layers.upperBound, options: options)
        }
    }

    /// Runs one generation. Cancelled, refused or failed, the cloud session is closed, not left to its idle timeout.
    func closingCloudOnError(_ generation: () async throws -> EdgeGeneration) async throws -> EdgeGeneration {
        do {
            return try await generation()
        } catch {
            await cloud?.close()
            throw error
        }
    }
}
