/// Final RMSNorm and LM head. With tied embeddings (no `output.weight`) the head is the embedding
/// matrix, packed for products.
final class OutputHead: @unchecked Sendable {
    let norm: [Float]
    let matrix: WeightMatrix
    let isTied: Bool
    /// The GGUF tensor the head's rows come from.
    let tensor: GGUFTensorInfo

    init(loader: TensorLoader, config: ModelConfig) throws {
        norm = try loader.vector("output_norm.weight", count: config.hiddenSize)
        isTied = !loader.has("output.weight")
        let name = isTied ? "token_embd.weight" : "output.weight"
        tensor = try loader.info(name, shape: [config.hiddenSize, config.vocabularySize])
        matrix = try loader.matrix([tensor])
    }
}
