/// Final RMSNorm and LM head. With tied embeddings (no `output.weight`) the head is the embedding
/// matrix, packed for products.
final class OutputHead: @unchecked Sendable {
    let norm: [Float]
    let matrix: WeightMatrix
    let isTied: Bool

    init(loader: TensorLoader, config: ModelConfig) throws {
        norm = try loader.vector("output_norm.weight", count: config.hiddenSize)
        isTied = !loader.has("output.weight")
        let name = isTied ? "token_embd.weight" : "output.weight"
        matrix = try loader.matrix([loader.info(name, shape: [config.hiddenSize, config.vocabularySize])])
    }
}
