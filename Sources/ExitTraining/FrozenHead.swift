import CKernels
import Exits
import LLM

/// The model's final RMSNorm and LM head in f32, frozen while an exit block trains: the loss is
/// back-propagated through them to the block's output, never into them. f32 (not the file's
/// quantized format) because training needs both W x and W^T g products, which the engine's packed
/// int8 kernels do not provide; 49,152 x 576 floats are 113 MB.
public struct FrozenHead: Sendable {
    public let width: Int
    public let vocabularySize: Int
    /// Final RMSNorm weight (width values).
    public let norm: [Float]
    public let epsilon: Float
    /// vocabularySize rows of width values: logits = matrix * rmsnorm(z).
    public let matrix: [Float]

    public init(norm: [Float], epsilon: Float, matrix: [Float], vocabularySize: Int) throws {
        guard !norm.isEmpty, vocabularySize > 0, matrix.count == norm.count * vocabularySize else {
            throw TrainingError.shapeMismatch("head matrix has \(matrix.count) values, expected \(vocabularySize) x \(norm.count)")
        }
        self.width = norm.count
        self.vocabularySize = vocabularySize
        self.norm = norm
        self.epsilon = epsilon
        self.matrix = matrix
    }

    /// Reads `output_norm.weight` and `output.weight` (or the tied `token_embd.weight`) from a GGUF
    /// model and dequantizes them.
    public init(file: GGUFFile) throws {
        let config = try ModelConfig(gguf: file)
        let d = config.hiddenSize
        let norm = try dequantizedTensor(file, "output_norm.weight", rows: 1, columns: d)
        let name = file.tensor(named: "output.weight") != nil ? "output.weight" : "token_embd.weight"
        let matrix = try dequantizedTensor(file, name, rows: config.vocabularySize, columns: d)
        try self.init(norm: norm, epsilon: config.rmsEpsilon, matrix: matrix, vocabularySize: config.vocabularySize)
    }
}
