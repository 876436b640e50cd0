import CKernels

/// A Llama-family decoder (Llama, Mistral, Qwen2, Gemma 3: see `ModelConfig.Block`) restricted to layers `[a, b)`. The same type runs the edge part, the
/// cloud part and the full model: hidden states in, hidden states out. Only an instance that asks
/// for them holds the token embeddings (by default: a == 0) or the final norm and LM head
/// (by default: b == layerCount), and each loads only its own tensors.
/// Not thread-safe: one forward pass at a time (the pool parallelizes inside it).
public final class LlamaModel: @unchecked Sendable {
    public let config: ModelConfig
    public let layers: Range<Int>
    public let file: GGUFFile
    public let pool: ThreadPool
    public let activations: ActivationPrecision
    /// Names of the GGUF tensors this instance read.
    public let loadedTensors: Set<String>

    let embedding: TokenEmbedding?
    let blocks: [TransformerLayer]
    let head: OutputHead?
    private let workspace = Workspace()

    public var hasEmbeddings: Bool { embedding != nil }
    public var hasHead: Bool { head != nil }

    /// Bytes of packed weights held by this instance (the embedding table is read in place).
    public var weightBytes: Int { layerWeightBytes + (head?.matrix.packedBytes ?? 0) }

    /// Bytes of the layers' packed matrices: what one decode step reads from them.
    public var layerWeightBytes: Int { blocks.reduce(0) { $0 + $1.weightBytes } }

    /// `activations` chooses how every matrix product of this instance sees its input (see
    /// `ActivationPrecision`); the int8 default matches llama.cpp's CPU backend.
    public init(file: GGUFFile, layers: Range<Int>? = nil, embeddings: Bool? = nil, head: Bool? = nil,
                activations: ActivationPrecision = .int8, pool: ThreadPool) throws {
        let config = try ModelConfig(gguf: file)
        let range = layers ?? 0..<config.layerCount
        guard range.lowerBound >= 0, range.upperBound <= config.layerCount, !range.isEmpty || head == true else {
            throw EngineError.invalidLayerRange(range, layerCount: config.layerCount)
        }
        self.config = config
        self.layers = range
        self.file = file
        self.pool = pool
        self.activations = activations
        let loader = TensorLoader(file: file, activations: activations)
        embedding = try (embeddings ?? (range.lowerBound == 0)) ? TokenEmbedding(loader: loader, config: config) : nil
        blocks = try range.map { try TransformerLayer(index: $0, loader: loader, config: config) }
        self.head = try (head ?? (range.upperBound == config.layerCount)) ? OutputHead(loader: loader, config: config) : nil
        loadedTensors = loader.loaded
    }

    /// One decoder layer beside `model`'s own (an exit block trained outside the GGUF file), its f32
    /// weights quantized to `format`: it runs with the same layer code, kernels and activation
    /// precision as `model`'s layers, at a fraction of an f32 pass's cost. It answers `makeCache` and
    /// `forward` as a one-layer range at `index` (which picks the layer's RoPE base); no embeddings, no head.
    public init(layer weights: DecoderLayerWeights, at index: Int, format: GGMLType, beside model: LlamaModel) throws {
        let config = model.config
        guard index >= 0, index < config.layerCount else {
            throw EngineError.invalidLayerRange(index..<(index + 1), layerCount: config.layerCount)
        }
        self.config = config
        layers = index..<(index + 1)
        file = model.file
        pool = model.pool
        activations = model.activations
        embedding = nil
        blocks = [try TransformerLayer(index: index, weights: weights, config: config, format: format,
                                       activations: model.activations)]
        head = nil
        loadedTensors = []
    }

    /// A KV cache for this instance's layers, or for the sub-range `only` (a cloud that holds the whole
    /// model keeps split sessions' caches for the layers above the split alone).
    public func makeCache(capacity: Int? = nil, only: Range<Int>? = nil) -> KVCache {
        KVCache(layers: only ?? layers, kvDim: config.kvDim, capacity: capacity ?? config.contextLength)
    }

    /// Token embeddings, one row per token.
    public func embed(_ tokens: [Int]) throws -> HiddenStates {
        guard let embedding else { throw EngineError.noEmbeddings(layers: layers) }
        var out = HiddenStates(rows: tokens.count, width: config.hiddenSize)
        try out.values.withUnsafeMutableBufferPointer { try embedding.lookup(tokens, into: $0.baseAddress!) }
        if config.embeddingScale != 1 {
            let scale = config.embeddingScale
            for i in out.values.indices { out.values[i] *= scale }
        }
        return out
    }

    /// Runs this instance's layers (or the sub-range `only`) over one sequence's new rows,
    /// appended at the end of the first layer run.
    public func forward(_ hidden: inout HiddenStates, cache: KVCache, only: Range<Int>? = nil) throws {
        guard let first = (only ?? layers).first else { return }
        let position = cache.count(layer: first)
        try forward(&hidden, batch: [BatchSegment(cache: cache, position: position, count: hidden.rows)], only: only)
    }

    /// Runs this instance's layers (or the sub-range `only`) over rows from several sequences in one
    /// pass: matrix products see all rows at once; attention reads each segment's own cache. A segment
    /// may start before a layer's filled end (rewriting positions), but not after it.
    public func forward(_ hidden: inout HiddenStates, batch: [BatchSegment], only: Range<Int>? = nil) throws {
        let range = only ?? layers
        guard range.lowerBound >= layers.lowerBound, range.upperBound <= layers.upperBound else {
            throw EngineError.invalidLayerRange(range, layerCount: config.layerCount)
        }
        guard hidden.width == config.hiddenSize else {
            throw EngineError.shapeMismatch("hidden width \(hidden.width), model width \(config.hiddenSize)")
        }
        guard batch.reduce(0, { $0 + $1.count }) == hidden.rows else {
            throw EngineError.shapeMismatch("batch covers \(batch.reduce(0) { $0 + $1.count }) rows, hidden has \(hidden.rows)")
        }
        guard Set(batch.map { ObjectIdentifier($0.cache) }).count == batch.count else {
            throw EngineError.shapeMismatch("a cache appears twice in one batch")
        }
        for segment in batch {
            let cache = segment.cache
            guard cache.layers.lowerBound <= range.lowerBound, range.upperBound <= cache.layers.upperBound,
                  segment.position >= 0,
                  range.allSatisfy({ segment.position <= cache.count(layer: $0) }) else {
                throw EngineError.shapeMismatch("segment at \(segment.position) does not fit its cache (layers \(cache.layers), filled \(cache.layerCounts))")
            }
            guard cache.reserve(segment.position + segment.count) else {
                throw EngineError.contextFull(needed: segment.position + segment.count, capacity: cache.capacity)
            }
        }
        if hidden.rows == 0 { return }
        let rows = hidden.rows
        let selected = blocks[(range.lowerBound - layers.lowerBound)..<(range.upperBound - layers.lowerBound)]
        // RoPE angles once per forward pass and base (Gemma 3 has two), not per layer and head.
        let headDim = config.headDim
        var ropeTables: [UInt32: UnsafeMutablePointer<Float>] = [:]
        for block in selected {
            let base = config.ropeBase(layer: block.index)
            if ropeTables[base.bitPattern] != nil { continue }
            let table = workspace.ropeTable(ropeTables.count).reserve(rows * headDim)
            var row = 0
            for segment in batch {
                ck_rope_table(table + row * headDim, Int64(segment.count), Int64(segment.position), Int64(headDim), base)
                row += segment.count
            }
            ropeTables[base.bitPattern] = table
        }
        hidden.values.withUnsafeMutableBufferPointer { x in
            for block in selected {
                run(block, on: x.baseAddress!, rows: rows, batch: batch,
                    rope: ropeTables[config.ropeBase(layer: block.index).bitPattern]!)
            }
        }
        for segment in batch {
            for layer in range { segment.cache.commit(layer: layer, count: segment.position + segment.count) }
        }
    }

    /// Logits (final norm + head) for the selected rows: `rows.count` vectors of vocabulary size.
    public func logits(_ hidden: HiddenStates, rows: [Int]? = nil) throws -> [Float] {
        guard let head else { throw EngineError.noHead(layers: layers) }
        let selected = rows ?? Array(0..<hidden.rows)
        let dim = config.hiddenSize
        let normed = workspace.normed.reserve(selected.count * dim)
        try hidden.values.withUnsafeBufferPointer { x in
            for (j, r) in selected.enumerated() {
                guard r >= 0, r < hidden.rows else { throw EngineError.shapeMismatch("row \(r) of \(hidden.rows)") }
                ck_rmsnorm(x.baseAddress! + r * dim, head.norm, normed + j * dim, 1, Int64(dim), config.rmsEpsilon)
            }
        }
        let vocab = head.matrix.rows
        var out = [Float](repeating: 0, count: selected.count * vocab)
        out.withUnsafeMutableBufferPointer { y in
            head.matrix.multiply(normed, rows: selected.count, into: y.baseAddress!, ldy: vocab,
                                 scratch: workspace.activations, pool: pool)
        }
        return out
    }

    /// The final RMSNorm (with its weight) of each row: what the LM head multiplies.
    public func finalNorm(_ hidden: HiddenStates) throws -> HiddenStates {
        guard let head else { throw EngineError.noHead(layers: layers) }
        var out = HiddenStates(rows: hidden.rows, width: hidden.width)
        guard hidden.width == config.hiddenSize else {
            throw EngineError.shapeMismatch("hidden width \(hidden.width), model width \(config.hiddenSize)")
        }
        hidden.values.withUnsafeBufferPointer { x in
            out.values.withUnsafeMutableBufferPointer { y in
                ck_rmsnorm(x.baseAddress!, head.norm, y.baseAddress!, Int64(hidden.rows), Int64(hidden.width), config.rmsEpsilon)
            }
        }
        return out
    }

    /// The LM head's rows for `tokens` only, packed as their own matrix: a cheap partial head for
    /// screening exit decisions over a vocabulary shortlist.
    public func headRows(_ tokens: [Int], as type: GGMLType? = nil) throws -> WeightMatrix {
        guard let head else { throw EngineError.noHead(layers: layers) }
        return try WeightMatrix(file: file, tensor: head.tensor, selectedRows: tokens, as: type)
    }

    /// Runs `body(first, count)` over row ranges of 0..<n, on the pool when there are enough rows.
    /// Every row-wise op gives the same result however the rows are split.
    private func rowwise(_ n: Int, _ body: (Int, Int) -> Void) {
        if n < 8 || pool.threadCount == 1 {
            body(0, n)
            return
        }
        pool.parallelRanges(total: n) { range in body(range.lowerBound, range.count) }
    }

    private func run(_ block: TransformerLayer, on x: UnsafeMutablePointer<Float>, rows n: Int, batch: [BatchSegment],
                     rope: UnsafeMutablePointer<Float>) {
        let c = config
        let dim = c.hiddenSize, qDim = c.queryDim, kvDim = c.kvDim, ffn = c.feedForwardSize
        let qkvWidth = qDim + 2 * kvDim
        let ws = workspace
        let xb = ws.normed.reserve(n * dim)
        let qkv = ws.qkv.reserve(n * qkvWidth)
        let att = ws.attention.reserve(n * qDim)
        let gateUp = ws.gateUp.reserve(n * 2 * ffn)
        let gated = ws.gated.reserve(n * ffn)
        let delta = ws.delta.reserve(n * dim)
        let eps = c.rmsEpsilon

        // Attention.
        rowwise(n) { j, m in ck_rmsnorm(x + j * dim, block.attentionNorm, xb + j * dim, Int64(m), Int64(dim), eps) }
        block.qkv.multiply(xb, rows: n, into: qkv, ldy: qkvWidth, scratch: ws.activations, pool: pool)
        let neox: Int32 = c.ropeStyle == .halves ? 1 : 0
        let headDim = c.headDim, heads = c.headCount, kvHeads = c.kvHeadCount
        let bias = block.qkvBias, queryNorm = block.queryNorm, keyNorm = block.keyNorm
        rowwise(n) { j0, m in
            for j in j0..<(j0 + m) {
                let r = qkv + j * qkvWidth
                if let bias { ck_add(r, bias, Int64(qkvWidth)) }
                if let queryNorm, let keyNorm {
                    ck_rmsnorm(r, queryNorm, r, Int64(heads), Int64(headDim), eps)
                    ck_rmsnorm(r + qDim, keyNorm, r + qDim, Int64(kvHeads), Int64(headDim), eps)
                }
            }
            let r = qkv + j0 * qkvWidth
            ck_rope_apply(r, Int64(m), Int64(heads), Int64(headDim), Int64(qkvWidth), rope + j0 * headDim, neox)
            ck_rope_apply(r + qDim, Int64(m), Int64(kvHeads), Int64(headDim), Int64(qkvWidth), rope + j0 * headDim, neox)
        }
        var row = 0
        for segment in batch {
            let base = qkv + row * qkvWidth
            let keys = segment.cache.keys(layer: block.index)
            let values = segment.cache.values(layer: block.index)
            for j in 0..<segment.count {
                let dst = (segment.position + j) * kvDim
                (keys + dst).update(from: base + j * qkvWidth + qDim, count: kvDim)
                (values + dst).update(from: base + j * qkvWidth + qDim + kvDim, count: kvDim)
            }
            attend(segment, queries: base, queryStride: qkvWidth, out: att + row * qDim, layer: block.index)
            row += segment.count
        }
        block.output.multiply(att, rows: n, into: delta, ldy: dim, scratch: ws.activations, pool: pool)
        let postAttention = block.postAttentionNorm
        rowwise(n) { j, m in
            if let postAttention { ck_rmsnorm(delta + j * dim, postAttention, delta + j * dim, Int64(m), Int64(dim), eps) }
            ck_add(x + j * dim, delta + j * dim, Int64(m * dim))
            // Gated feed-forward's norm, on the same rows.
            ck_rmsnorm(x + j * dim, block.ffnNorm, xb + j * dim, Int64(m), Int64(dim), eps)
        }

        // Gated feed-forward: SiLU (SwiGLU) or, for Gemma, GELU.
        block.gateUp.multiply(xb, rows: n, into: gateUp, ldy: 2 * ffn, scratch: ws.activations, pool: pool)
        let gelu = c.block == .gemma
        rowwise(n) { j0, m in
            for j in j0..<(j0 + m) {
                let g = gateUp + j * 2 * ffn
                if gelu { ck_gelu_mul(g, g + ffn, Int64(ffn)) } else { ck_silu_mul(g, g + ffn, Int64(ffn)) }
                (gated + j * ffn).update(from: g, count: ffn)
            }
        }
        block.down.multiply(gated, rows: n, into: delta, ldy: dim, scratch: ws.activations, pool: pool)
        let postFeedForward = block.postFeedForwardNorm
        rowwise(n) { j, m in
            if let postFeedForward { ck_rmsnorm(delta + j * dim, postFeedForward, delta + j * dim, Int64(m), Int64(dim), eps) }
            ck_add(x + j * dim, delta + j * dim, Int64(m * dim))
        }
    }

    private func attend(_ segment: BatchSegment, queries: UnsafeMutablePointer<Float>, queryStride: Int,
                        out: UnsafeMutablePointer<Float>, layer: Int) {
        let c = config
        let parts = min(pool.threadCount, c.headCount)
        let need = Int(ck_attention_scratch_floats(Int64(segment.count), Int64(segment.position), Int64(c.headDim)))
        let scratch = workspace.attentionScratch.reserve(parts * need)
        let keys = segment.cache.keys(layer: layer)
        let values = segment.cache.values(layer: layer)
        let window = c.attentionWindow(layer: layer)
        pool.run(parts) { part in
            let h0 = c.headCount * part / parts
            let h1 = c.headCount * (part + 1) / parts
            ck_attention(queries, Int64(queryStride), Int64(segment.count), Int64(segment.position),
                         keys, values, Int64(c.kvDim), Int64(c.headCount), Int64(c.kvHeadCount), Int64(c.headDim),
                         c.attentionScale, Int64(window), out, Int64(c.queryDim), Int64(h0), Int64(h1), scratch + part * need)
        }
    }
}

/// Reused buffers of one model instance.
private final class Workspace: @unchecked Sendable {
    let normed = ScratchBuffer()
    let qkv = ScratchBuffer()
    let attention = ScratchBuffer()
    let gateUp = ScratchBuffer()
    let gated = ScratchBuffer()
    let delta = ScratchBuffer()
    let attentionScratch = ScratchBuffer()
    /// RoPE angle tables of the current forward pass, one per distinct base.
    private var ropeTables: [ScratchBuffer] = []
    func ropeTable(_ index: Int) -> ScratchBuffer {
        while ropeTables.count <= index { ropeTables.append(ScratchBuffer()) }
        return ropeTables[index]
    }
    let activations = ActivationScratch()
}
