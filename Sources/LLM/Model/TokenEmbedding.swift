import CKernels

/// The token embedding table, read in place from the mapped file (never repacked: a lookup touches
/// one row per token).
final class TokenEmbedding: @unchecked Sendable {
    let tensor: GGUFTensorInfo
    let file: GGUFFile
    let width: Int
    let vocabularySize: Int
    private let rowBytes: Int

    init(loader: TensorLoader, config: ModelConfig) throws {
        tensor = try loader.info("token_embd.weight", shape: [config.hiddenSize, config.vocabularySize])
        guard tensor.type.isSupported else {
            throw GGUFError(path: loader.file.path, reason: "token_embd.weight has unsupported type \(tensor.type)")
        }
        file = loader.file
        width = config.hiddenSize
        vocabularySize = config.vocabularySize
        rowBytes = ck_row_bytes(ck_type(rawValue: tensor.type.rawValue), Int64(width))
        loader.markLoaded(tensor.name)
    }

    /// Writes the embedding of each token as consecutive rows of `out`.
    func lookup(_ tokens: [Int], into out: UnsafeMutablePointer<Float>) throws {
        let data = file.data(for: tensor)
        let kt = ck_type(rawValue: tensor.type.rawValue)
        for (j, token) in tokens.enumerated() {
            guard token >= 0, token < vocabularySize else {
                throw EngineError.invalidToken(token, vocabularySize: vocabularySize)
            }
            ck_dequantize_row(kt, data.baseAddress! + token * rowBytes, out + j * width, Int64(width))
        }
    }
}
