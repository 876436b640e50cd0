/// Errors raised while building a tokenizer from GGUF metadata.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A GGUF-embedded tokenizer that reproduces llama.cpp's tokenization.
///
/// Supported `tokenizer.ggml.model` values: `gpt2` (byte-level BPE with merges; the pre-tokenizer
/// comes from `tokenizer.ggml.pre`: smollm, gpt-2, llama-bpe/llama3, qwen2, starcoder, falcon and
/// their aliases; a missing name means llama.cpp's "default" chain; an unknown name is an error
/// unless `allowUnknownPreTokenizer`, which also uses the "default" chain)
/// and `llama` (SentencePiece BPE with scores and `<0xXX>` byte fallback).
///
/// Encoding: special tokens (control, user-defined, unknown) are cut out of the raw text first —
/// control ones only when `parseSpecial` — and every remaining fragment is pre-tokenized and
/// merged. Immutable after construction, so one instance can serve many threads.
public final class Tokenizer: Sendable {
    /// `tokenizer.ggml.token_type` values.
    public enum TokenType: Int, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public enum Model: String, Sendable {
        /// byte-level BPE (GPT-2 style)
        case gpt2
        /// SentencePiece BPE with scores
        case llama
    }

    public let model: Model
    /// The stored text of every token (byte-level BPE tokens are in the GPT-2 byte alphabet).
    public let tokens: [String]
    public let tokenTypes: [TokenType]
    public let bos: Int?
    public let eos: Int?
    /// Whether `encode(_:addSpecial: true)` prepends BOS / appends EOS.
    public let addBOS: Bool
    public let addEOS: Bool
    /// Tokens that end generation: EOS plus end-of-turn tokens found by text, as llama.cpp does
    /// (`<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, `<end_of_turn>`, ...).
    public let endOfGenerationIds: Set<Int>
    /// `tokenizer.ggml.pre`, and whether it is one this tokenizer knows (when not, the llama.cpp
    /// "default" pre-tokenizer is used, as llama.cpp itself does).
    public let preTokenizerName: String?
    public let preTokenizerRecognized: Bool

    let preTokenizer: PreTokenizer
    let merger: BPEMerger?
    let sentencePiece: SentencePieceModel?
    /// Byte-level BPE: raw bytes -> token (for whole-word look-ups with `ignoreMerges`)
    let rawToId: ByteSequenceTable
    /// stored text (UTF-8) -> id
    let textToId: ByteSequenceTable
    let specials: SpecialTokenMatcher
    /// decoded bytes of every token, concatenated; token i is pieceBytes[pieceStart[i]..<pieceStart[i+1]]
    let pieceArena: [UInt8]
    let pieceStart: [Int32]

    static let endOfGenerationTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    ]

    // MARK: - Construction

    /// Reads the tokenizer embedded in a GGUF file (`tokenizer.ggml.*` keys).
    public convenience init(gguf: GGUFFile, allowUnknownPreTokenizer: Bool = false) throws {
        guard let modelName = gguf.string("tokenizer.ggml.model") else {
            throw TokenizerError("\(gguf.path): no tokenizer.ggml.model key (no embedded tokenizer)")
        }
        guard let tokens = gguf.strings("tokenizer.ggml.tokens") else {
            throw TokenizerError("\(gguf.path): no tokenizer.ggml.tokens array")
        }
        let scores = gguf.metadata["tokenizer.ggml.scores"]?.floatsValue.map { $0.map { Float($0) } }
        try self.init(
            tokens: tokens,
            types: gguf.ints("tokenizer.ggml.token_type"),
            merges: gguf.strings("tokenizer.ggml.merges") ?? [],
            scores: scores,
            model: modelName,
            pre: gguf.string("tokenizer.ggml.pre"),
            bos: gguf.int("tokenizer.ggml.bos_token_id"),
            eos: gguf.int("tokenizer.ggml.eos_token_id"),
            unknown: gguf.int("tokenizer.ggml.unknown_token_id"),
            eot: gguf.int("tokenizer.ggml.eot_token_id"),
            addBOS: gguf.bool("tokenizer.ggml.add_bos_token"),
            addEOS: gguf.bool("tokenizer.ggml.add_eos_token"),
            addSpacePrefix: gguf.bool("tokenizer.ggml.add_space_prefix"),
            allowUnknownPreTokenizer: allowUnknownPreTokenizer)
    }

    /// Builds a tokenizer from explicit parts (what the GGUF keys hold).
    /// - Parameters:
    ///   - types: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined,
    ///     5 unused, 6 byte); nil = all normal.
    ///   - merges: "left right" strings, lowest rank first (byte-level BPE only).
    ///   - scores: token scores (SentencePiece only).
    ///   - addBOS/addEOS/addSpacePrefix: nil = the default for this model / pre-tokenizer.
    ///   - allowUnknownPreTokenizer: use llama.cpp's "default" splitting for an unknown `pre` name
    ///     instead of throwing (the tokens will likely differ from the model's own tokenizer).
    public init(
        tokens: [String], types: [Int]? = nil, merges: [String] = [], scores: [Float]? = nil,
        model modelName: String = "gpt2", pre: String? = nil, bos: Int? = nil, eos: Int? = nil,
        unknown: Int? = nil, eot: Int? = nil, addBOS: Bool? = nil, addEOS: Bool? = nil,
        addSpacePrefix: Bool? = nil, allowUnknownPreTokenizer: Bool = false
    ) throws {
        guard let model = Model(rawValue: modelName) else {
            throw TokenizerError(
                "unsupported tokenizer.ggml.model '\(modelName)' (supported: gpt2 byte-level BPE, llama SentencePiece)")
        }
        guard !tokens.isEmpty else { throw TokenizerError("empty vocabulary") }
        if let types, types.count != tokens.count {
            throw TokenizerError("token_type has \(types.count) entries for \(tokens.count) tokens")
        }
        if let scores, scores.count != tokens.count {
            throw TokenizerError("scores has \(scores.count) entries for \(tokens.count) tokens")
        }
        let n = tokens.count
        func valid(_ id: Int?) -> Int? { id.flatMap { $0 >= 0 && $0 < n ? $0 : nil } }

        self.model = model
        var texts = tokens
        for i in 0..<n where texts[i].isEmpty { texts[i] = "[EMPTY_\(i)]" }  // as llama.cpp
        var tokenTypes = (types ?? []).map { TokenType(rawValue: $0) ?? .undefined }
        if types == nil { tokenTypes = [TokenType](repeating: .normal, count: n) }

        // stored text -> id (a later duplicate wins, as in llama.cpp)
        var textTable = ByteSequenceTable(minimumCapacity: n)
        for i in 0..<n {
            Self.withUTF8(texts[i]) { textTable.insert($0, value: UInt64(i)) }
        }

        // end-of-generation tokens, forced to control type as llama.cpp does
        var eog = Set<Int>()
        for i in 0..<n {
            let first = texts[i].utf8.first
            guard first == 0x3C || first == 0x5F, Self.endOfGenerationTexts.contains(texts[i]),
                Self.withUTF8(texts[i], { textTable.find($0) }) == UInt64(i)
            else { continue }
            eog.insert(i)
            tokenTypes[i] = .control
        }
        let bosId: Int?
        let eosId: Int?
        switch model {
        case .gpt2:
            bosId = valid(bos)
            eosId = valid(eos)
        case .llama:
            bosId = valid(bos) ?? valid(1)
            eosId = valid(eos) ?? valid(2)
        }
        if let eosId { eog.insert(eosId) }
        if let eot = valid(eot) { eog.insert(eot) }
        self.tokens = texts
        self.tokenTypes = tokenTypes
        self.textToId = textTable
        self.bos = bosId
        self.eos = eosId
        self.endOfGenerationIds = eog

        // special tokens matched in raw text
        var entries: [SpecialTokenMatcher.Entry] = []
        for i in 0..<n {
            switch tokenTypes[i] {
            case .control, .unknown:
                entries.append(.init(id: Int32(i), bytes: Array(texts[i].utf8), always: false))
            case .userDefined:
                entries.append(.init(id: Int32(i), bytes: Array(texts[i].utf8), always: true))
            default:
                break
            }
        }
        specials = SpecialTokenMatcher(entries: entries)

        switch model {
        case .gpt2:
            let pre = PreTokenizer(name: pre)
            guard pre.recognized || allowUnknownPreTokenizer else {
                throw TokenizerError(
                    "unsupported tokenizer.ggml.pre '\(pre.name ?? "")' (supported: "
                        + PreTokenizer.supportedNames.joined(separator: ", ") + ")")
            }
            preTokenizer = pre
            preTokenizerName = pre.name
            preTokenizerRecognized = pre.recognized
            self.addBOS = addBOS ?? pre.defaultAddBOS
            self.addEOS = addEOS ?? false

            // raw bytes -> id, for texts made only of byte-alphabet characters
            var raw = ByteSequenceTable(minimumCapacity: n)
            var buffer: [UInt8] = []
            for i in 0..<n {
                buffer.removeAll(keepingCapacity: true)
                if GPT2ByteMap.decode(texts[i], into: &buffer) { raw.insert(buffer, value: UInt64(i)) }
            }
            var byteTokens = [Int32](repeating: -1, count: 256)
            for b in 0..<256 {
                if let id = raw.find([UInt8(b)]) { byteTokens[b] = Int32(id) }
            }
            // merges "left right" -> (left id, right id) -> (rank, merged id)
            var table = BPEMergeTable(minimumCapacity: merges.count)
            var joined: [UInt8] = []
            for (rank, merge) in merges.enumerated() {
                Self.withUTF8(merge) { m in
                    guard m.count > 2 else { return }
                    var space = -1
                    for k in 1..<m.count where m[k] == 0x20 {
                        space = k
                        break
                    }
                    guard space > 0 else { return }
                    guard let l = textTable.find(UnsafeBufferPointer(rebasing: m[0..<space])),
                        let r = textTable.find(UnsafeBufferPointer(rebasing: m[(space + 1)...]))
                    else { return }
                    joined.removeAll(keepingCapacity: true)
                    joined.append(contentsOf: m[0..<space])
                    joined.append(contentsOf: m[(space + 1)...])
                    guard let merged = textTable.find(joined) else { return }
                    table.insert(left: Int32(l), right: Int32(r), rank: rank, merged: Int32(merged))
                }
            }
            rawToId = raw
            merger = BPEMerger(merges: table, byteTokens: byteTokens)
            sentencePiece = nil

        case .llama:
            guard let scores else { throw TokenizerError("SentencePiece (llama) vocabulary without tokenizer.ggml.scores") }
            preTokenizer = PreTokenizer(name: "default")
            preTokenizerName = pre
            preTokenizerRecognized = true
            self.addBOS = addBOS ?? true
            self.addEOS = addEOS ?? false
            let hex = Array("0123456789ABCDEF".utf8)
            var byteTokens = [Int32](repeating: -1, count: 256)
            for b in 0..<256 {
                let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]  // <0xXX>
                if let id = textTable.find(name) ?? textTable.find([UInt8(b)]) { byteTokens[b] = Int32(id) }
            }
            rawToId = ByteSequenceTable()
            merger = nil
            sentencePiece = SentencePieceModel(
                scores: scores, textToId: textTable, byteTokens: byteTokens,
                unknown: Int32(valid(unknown) ?? valid(0) ?? -1), addSpacePrefix: addSpacePrefix ?? true)
        }

        // decoded bytes of every token
        var arena: [UInt8] = []
        arena.reserveCapacity(n * 8)
        var starts: [Int32] = [0]
        starts.reserveCapacity(n + 1)
        for i in 0..<n {
            let t = texts[i]
            switch tokenTypes[i] {
            case .normal:
                if model == .gpt2 {
                    GPT2ByteMap.decodeLenient(t, into: &arena)
                } else {
                    // U+2581 (E2 96 81) -> space
                    Self.withUTF8(t) { u in
                        var k = 0
                        while k < u.count {
                            if k + 2 < u.count && u[k] == 0xE2 && u[k + 1] == 0x96 && u[k + 2] == 0x81 {
                                arena.append(0x20)
                                k += 3
                            } else {
                                arena.append(u[k])
                                k += 1
                            }
                        }
                    }
                }
            case .control, .unknown, .userDefined:
                arena.append(contentsOf: t.utf8)
            case .byte:
                if let b = Self.parseByteToken(t) {
                    arena.append(b)
                } else if model == .gpt2 {
                    GPT2ByteMap.decodeLenient(t, into: &arena)
                }
            case .unused, .undefined:
                break
            }
            starts.append(Int32(arena.count))
        }
        pieceArena = arena
        pieceStart = starts
    }

    @inline(__always)
    static func withUTF8<R>(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let r = try s.utf8.withContiguousStorageIfAvailable(body) { return r }
        return try Array(s.utf8).withUnsafeBufferPointer(body)
    }

    /// "<0xAB>" -> 0xAB
    static func parseByteToken(_ text: String) -> UInt8? {
        let u = Array(text.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    // MARK: - Queries

    public var vocabularySize: Int { tokens.count }

    /// The token's stored text (e.g. "Ġthe" for a byte-level BPE token, "<|im_start|>").
    public func tokenText(_ id: Int) -> String {
        id >= 0 && id < tokens.count ? tokens[id] : ""
    }

    /// The id of the token whose stored text is exactly `text` (e.g. "<|im_start|>").
    public func tokenId(for text: String) -> Int? {
        Self.withUTF8(text) { textToId.find($0) }.map { Int($0) }
    }

    public func tokenType(_ id: Int) -> TokenType {
        id >= 0 && id < tokenTypes.count ? tokenTypes[id] : .undefined
    }

    public func isControl(_ id: Int) -> Bool { tokenType(id) == .control }

    /// Whether generation stops at this token: the one answer every token loop uses (llama.cpp's `is_eog`).
    public func isEndOfGeneration(_ id: Int) -> Bool { endOfGenerationIds.contains(id) }

    /// The bytes this token stands for in decoded text (control tokens: their text).
    public func pieceBytes(_ id: Int) -> [UInt8] {
        guard id >= 0 && id < tokens.count else { return [] }
        return Array(pieceArena[Int(pieceStart[id])..<Int(pieceStart[id + 1])])
    }

    @inline(__always)
    func appendPiece(_ id: Int, skipSpecial: Bool, to out: inout [UInt8]) {
        guard id >= 0 && id < tokens.count else { return }
        if skipSpecial {
            let t = tokenTypes[id]
            if t == .control || t == .unknown { return }
        }
        out.append(contentsOf: pieceArena[Int(pieceStart[id])..<Int(pieceStart[id + 1])])
    }

    // MARK: - Encoding

    /// Tokenizes `text`.
    /// - Parameters:
    ///   - addSpecial: add BOS/EOS when the model asks for them (`add_bos_token`, `add_eos_token`).
    ///   - parseSpecial: recognise control tokens such as "<|im_start|>" in the text; when false
    ///     they are tokenized as plain text (user-defined tokens are always recognised).
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecial && addBOS, let bos { out.append(Int32(bos)) }
        var utf8 = Array(text.utf8)
        utf8.withUnsafeMutableBufferPointer { mbytes in
            let bytes = UnsafeBufferPointer(mbytes)
            let fragments: [SpecialTokenMatcher.Fragment] =
                specials.isEmpty ? (bytes.isEmpty ? [] : [.text(0..<bytes.count)])
                : specials.partition(bytes, parseSpecial: parseSpecial)
            var cache = WordCache()
            var previousWasSpecial = true
            for fragment in fragments {
                switch fragment {
                case .token(let id):
                    out.append(id)
                    previousWasSpecial = true
                case .text(let range):
                    let slice = UnsafeBufferPointer(rebasing: bytes[range])
                    if let sp = sentencePiece {
                        sp.encode(slice, prefixSpace: previousWasSpecial, into: &out)
                    } else {
                        encodeByteLevel(slice, cache: &cache, into: &out)
                    }
                    previousWasSpecial = false
                }
            }
        }
        if addSpecial && addEOS, let eos { out.append(Int32(eos)) }
        return out.map { Int($0) }
    }

    /// Per-call cache of BPE results by word bytes.
    struct WordCache {
        var table = ByteSequenceTable(minimumCapacity: 1024)
        var tokens: [Int32] = []
    }

    /// Pre-tokenizes one text fragment (valid UTF-8) and BPE-encodes each word.
    func encodeByteLevel(_ bytes: UnsafeBufferPointer<UInt8>, cache: inout WordCache, into out: inout [Int32]) {
        guard let merger, !bytes.isEmpty else { return }
        // code points, their byte offsets and classes
        var cps: [UInt32] = []
        var offsets: [Int32] = []
        cps.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            offsets.append(Int32(i))
            if b0 < 0x80 {
                cps.append(b0)
                i += 1
            } else if b0 < 0xE0, i + 1 < n {
                cps.append((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F))
                i += 2
            } else if b0 < 0xF0, i + 2 < n {
                cps.append((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F))
                i += 3
            } else if i + 3 < n {
                cps.append(
                    (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                        | UInt32(bytes[i + 3] & 0x3F))
                i += 4
            } else {
                cps.append(0xFFFD)  // cannot happen for String input
                i += 1
            }
        }
        offsets.append(Int32(n))
        let flags = cps.map { $0 < 0x80 ? Self.asciiFlags[Int($0)] : UnicodeClass.flags($0) }
        let ends = cps.withUnsafeBufferPointer { c in
            flags.withUnsafeBufferPointer { f in preTokenizer.split(c, f) }
        }
        let ignoreMerges = preTokenizer.ignoreMerges
        var start = 0
        for end in ends {
            let word = UnsafeBufferPointer(rebasing: bytes[Int(offsets[start])..<Int(offsets[end])])
            start = end
            if ignoreMerges, let id = rawToId.find(word) {
                out.append(Int32(id))
                continue
            }
            if word.count <= 2 {
                merger.encode(word, into: &out)
                continue
            }
            if let packed = cache.table.find(word) {
                let s = Int(packed >> 32)
                let len = Int(packed & 0xFFFF_FFFF)
                out.append(contentsOf: cache.tokens[s..<(s + len)])
                continue
            }
            let before = out.count
            merger.encode(word, into: &out)
            let s = cache.tokens.count
            cache.tokens.append(contentsOf: out[before...])
            cache.table.insert(word, value: UInt64(s) << 32 | UInt64(out.count - before))
        }
    }

    static let asciiFlags: [UInt8] = (0..<128).map { UnicodeClass.computeFlags(Unicode.Scalar(UInt8($0))) }

    // MARK: - Decoding

    /// Concatenates the tokens' bytes and decodes them as UTF-8 (invalid sequences become U+FFFD).
    /// Control tokens are rendered as their text unless `skipSpecial`. For SentencePiece
    /// vocabularies with a space prefix, the first token's leading space is removed (llama.cpp's
    /// detokenizer does the same).
    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for (k, id) in ids.enumerated() {
            let before = bytes.count
            appendPiece(id, skipSpecial: skipSpecial, to: &bytes)
            if k == 0, let sp = sentencePiece, sp.addSpacePrefix, bytes.count > before, bytes[before] == 0x20 {
                bytes.remove(at: before)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes and returns raw bytes (no UTF-8 repair).
    public func decodeBytes(_ ids: [Int], skipSpecial: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids { appendPiece(id, skipSpecial: skipSpecial, to: &bytes) }
        return bytes
    }
}
