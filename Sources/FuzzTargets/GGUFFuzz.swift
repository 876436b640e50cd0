import Foundation
import LLM

/// GGUF bytes: the reader, then what is built from a file that parses.
enum GGUFFuzz {
    static func run(_ data: [UInt8]) {
        guard let file = try? GGUFFile(bytes: data) else { return }
        for tensor in file.tensors {
            fuzzCheck(file.data(for: tensor).count == tensor.byteCount, "tensor \(tensor.name) bytes")
        }
        if let config = try? ModelConfig(gguf: file) {
            fuzzCheck(config.layerCount > 0 && config.hiddenSize > 0, "config \(config)")
            // Building a model reads and packs every tensor; the size checks keep a fuzz input from asking
            // for gigabytes of scratch through legal but huge hyperparameters.
            if config.layerCount <= 8, config.hiddenSize <= 512, config.feedForwardSize <= 2048, config.vocabularySize <= 4096,
               config.contextLength <= 4096,
               let model = try? LlamaModel(file: file, pool: pool) {
                let cache = model.makeCache(capacity: 8)
                if var hidden = try? model.embed([0, 1]) {
                    try? model.forward(&hidden, cache: cache)
                }
            }
        }
        if let tokenizer = try? Tokenizer(gguf: file) {
            let ids = tokenizer.encode("Hello, world! <|im_start|>user 123 \u{1F600}")
            fuzzCheck(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "token ids out of the vocabulary")
            _ = tokenizer.decode(ids)
            _ = try? ChatFormat.choose(name: nil, gguf: file, tokenizer: tokenizer)
        }
    }

    static let pool = ThreadPool(threadCount: 1)

    /// A one-layer llama with a 300-token slice of the default model's vocabulary and merges, so the seed
    /// reaches the config, the tokenizer and the model loader; plus the same without tensors.
    static func seeds() throws -> [[UInt8]] {
        let model = try FuzzModel.shared.file
        let vocabulary = Array((model.strings("tokenizer.ggml.tokens") ?? []).prefix(300))
        let types = Array((model.ints("tokenizer.ggml.token_type") ?? []).prefix(300)).map { Int64($0) }
        let merges = Array((model.strings("tokenizer.ggml.merges") ?? []).prefix(40))
        let hidden = 32, ffn = 64, heads = 2, kvHeads = 1, headDim = 16
        var writer = GGUFWriter()
        writer.metadata("general.architecture", .string("llama"))
        writer.metadata("llama.block_count", .uint(1))
        writer.metadata("llama.embedding_length", .uint(UInt64(hidden)))
        writer.metadata("llama.feed_forward_length", .uint(UInt64(ffn)))
        writer.metadata("llama.attention.head_count", .uint(UInt64(heads)))
        writer.metadata("llama.attention.head_count_kv", .uint(UInt64(kvHeads)))
        writer.metadata("llama.context_length", .uint(64))
        writer.metadata("llama.rope.freq_base", .float(10_000))
        writer.metadata("llama.attention.layer_norm_rms_epsilon", .float(1e-5))
        writer.metadata("tokenizer.ggml.model", .string(model.string("tokenizer.ggml.model") ?? "gpt2"))
        writer.metadata("tokenizer.ggml.pre", .string(model.string("tokenizer.ggml.pre") ?? "default"))
        writer.metadata("tokenizer.ggml.tokens", .strings(vocabulary))
        writer.metadata("tokenizer.ggml.token_type", .ints(types))
        writer.metadata("tokenizer.ggml.merges", .strings(merges))
        writer.metadata("tokenizer.ggml.bos_token_id", .uint(1))
        writer.metadata("tokenizer.ggml.eos_token_id", .uint(2))
        writer.metadata("tokenizer.chat_template", .string(model.string("tokenizer.chat_template") ?? ""))
        let withoutTensors = writer.bytes()
        let vocab = vocabulary.count
        writer.tensor("token_embd.weight", [hidden, vocab])
        writer.tensor("output_norm.weight", [hidden])
        writer.tensor("blk.0.attn_norm.weight", [hidden])
        writer.tensor("blk.0.attn_q.weight", [hidden, heads * headDim])
        writer.tensor("blk.0.attn_k.weight", [hidden, kvHeads * headDim])
        writer.tensor("blk.0.attn_v.weight", [hidden, kvHeads * headDim])
        writer.tensor("blk.0.attn_output.weight", [heads * headDim, hidden])
        writer.tensor("blk.0.ffn_norm.weight", [hidden])
        writer.tensor("blk.0.ffn_gate.weight", [hidden, ffn])
        writer.tensor("blk.0.ffn_up.weight", [hidden, ffn])
        writer.tensor("blk.0.ffn_down.weight", [ffn, hidden])
        return [writer.bytes(), withoutTensors, Array("GGUF".utf8) + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16)]
    }
}

/// Writes GGUF version 3 (f32 tensors with small deterministic values) for the seeds.
struct GGUFWriter {
    private var entries: [(String, GGUFValue)] = []
    private var tensors: [(String, [Int])] = []

    mutating func metadata(_ key: String, _ value: GGUFValue) { entries.append((key, value)) }
    mutating func tensor(_ name: String, _ shape: [Int]) { tensors.append((name, shape)) }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        out += Array("GGUF".utf8)
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(entries.count))
        for (key, value) in entries {
            string(key)
            switch value {
            case .string(let s): u32(8); string(s)
            case .uint(let v): u32(10); u64(v)
            case .int(let v): u32(11); u64(UInt64(bitPattern: v))
            case .float(let v): u32(6); u32(Float(v).bitPattern)
            case .bool(let b): u32(7); out.append(b ? 1 : 0)
            case .strings(let values): u32(9); u32(8); u64(UInt64(values.count)); values.forEach(string)
            case .ints(let values): u32(9); u32(5); u64(UInt64(values.count)); values.forEach { u32(UInt32(bitPattern: Int32(truncatingIfNeeded: $0))) }
            default: fatalError("GGUFWriter: unsupported value \(value)")
            }
        }
        var offset = 0
        var sizes: [Int] = []
        for (name, shape) in tensors {
            string(name)
            u32(UInt32(shape.count))
            shape.forEach { u64(UInt64($0)) }
            u32(0)  // f32
            u64(UInt64(offset))
            let size = shape.reduce(4, *)
            sizes.append(size)
            offset += (size + 31) / 32 * 32
        }
        guard !tensors.isEmpty else { return out }
        out += [UInt8](repeating: 0, count: (32 - out.count % 32) % 32)
        for (i, size) in sizes.enumerated() {
            for k in 0..<size / 4 {
                let value: Float = tensors[i].0.hasSuffix("norm.weight") ? 1 : Float((k * 7 + i) % 13 - 6) / 64
                u32(value.bitPattern)
            }
            out += [UInt8](repeating: 0, count: (size + 31) / 32 * 32 - size)
        }
        return out
    }
}
