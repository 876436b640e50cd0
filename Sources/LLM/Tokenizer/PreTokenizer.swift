/// Pre-tokenization: splitting text into the "words" that BPE merges never cross.
///
/// Every supported `tokenizer.ggml.pre` value is a chain of split stages, as in llama.cpp: each
/// stage refines the pieces of the previous one, and text a stage does not match stays a piece of
/// its own, so the pieces always cover the whole text. The regular expressions are hand-written as
/// small scanners over code points (the patterns are in the comments), which is both faster than a
/// regex engine and independent of its Unicode support.
struct PreTokenizer: Sendable {
    enum Stage: Sendable, Equatable {
        /// `\p{N}`: every number code point becomes its own piece.
        case singleNumbers
        /// `\p{N}+`: runs of number code points become pieces.
        case numberRuns
        /// `[\p{P}\$\+<=>\^~\|]+` (with a backtick too when `backtick`): runs of punctuation and
        /// those ASCII symbols become pieces.
        case punctuationRuns(backtick: Bool)
        /// `[0-9][0-9][0-9]`: ASCII digit triples become pieces.
        case asciiDigitTriples
        /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        case gpt2
        /// Llama 3 style: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}|
        /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` with k = maxDigits (3 for Llama 3,
        /// 1 for Qwen2).
        case llama3(maxDigits: Int)
    }

    /// The `tokenizer.ggml.pre` value this was built from (nil when the file has none).
    let name: String?
    let stages: [Stage]
    /// Whether the name was recognised (a missing name counts as "default", as in llama.cpp);
    /// unknown names get llama.cpp's "default" chain if the caller allows it.
    let recognized: Bool
    /// Llama 3 style vocabularies look a whole word up before merging ("ignore_merges").
    let ignoreMerges: Bool
    /// Whether the tokenizer adds BOS when the file does not say (llama.cpp's per-type default).
    let defaultAddBOS: Bool

    static let defaultStages: [Stage] = [.punctuationRuns(backtick: false), .gpt2, .numberRuns, .asciiDigitTriples]

    private struct Config {
        let stages: [Stage]
        var ignoreMerges = false
        var addBOS = false
    }

    /// llama.cpp's `tokenizer.ggml.pre` names grouped by the splitting they share.
    private static let configs: [String: Config] = {
        var table: [String: Config] = [:]
        func add(_ names: [String], _ config: Config) {
            for n in names { table[n] = config }
        }
        add(["default"], Config(stages: defaultStages))
        add(
            ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
            Config(stages: [.llama3(maxDigits: 3)], ignoreMerges: true, addBOS: true))
        add(["qwen2", "deepseek-r1-qwen", "kormo", "stablelm2", "megrez"], Config(stages: [.llama3(maxDigits: 1)]))
        add(
            [
                "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
                "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "exaone4",
                "granite-docling",
            ], Config(stages: [.gpt2]))
        add(["falcon"], Config(stages: [.punctuationRuns(backtick: true), .gpt2, .asciiDigitTriples]))
        add(
            ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"],
            Config(stages: [.singleNumbers, .gpt2]))
        return table
    }()

    static var supportedNames: [String] { configs.keys.sorted() }

    init(name: String?) {
        self.name = name
        let config = Self.configs[name ?? "default"]
        recognized = config != nil
        stages = config?.stages ?? Self.defaultStages
        ignoreMerges = config?.ignoreMerges ?? false
        defaultAddBOS = config?.addBOS ?? false
    }

    /// Splits `cps` (with `flags[i] = UnicodeClass.flags(cps[i])`) and returns the end offset of
    /// every piece, in order; the last one is `cps.count`.
    func split(_ cps: UnsafeBufferPointer<UInt32>, _ flags: UnsafeBufferPointer<UInt8>) -> [Int] {
        guard !cps.isEmpty else { return [] }
        var ends = [cps.count]
        var next: [Int] = []
        for stage in stages {
            next.removeAll(keepingCapacity: true)
            next.reserveCapacity(ends.count + cps.count / 3)
            var start = 0
            for end in ends {
                let scanner = Scanner(cps: cps, flags: flags, start: start, end: end)
                switch stage {
                case .singleNumbers: scanner.singleNumbers(&next)
                case .numberRuns: scanner.runs(of: UnicodeClass.number, into: &next)
                case .punctuationRuns(let backtick): scanner.punctuationRuns(backtick: backtick, &next)
                case .asciiDigitTriples: scanner.asciiDigitTriples(&next)
                case .gpt2: scanner.gpt2(&next)
                case .llama3(let k): scanner.llama3(maxDigits: k, &next)
                }
                start = end
            }
            swap(&ends, &next)
        }
        return ends
    }
}

/// Scans one piece `[start, end)`; positions outside it read as "no character" (flags 0).
private struct Scanner {
    let cps: UnsafeBufferPointer<UInt32>
    let flags: UnsafeBufferPointer<UInt8>
    let start: Int
    let end: Int

    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20
    private static let cr: UInt32 = 0x0D
    private static let lf: UInt32 = 0x0A

    @inline(__always) func cp(_ i: Int) -> UInt32 { i < end ? cps[i] : 0xFFFF_FFFF }
    @inline(__always) func fl(_ i: Int) -> UInt8 { i < end ? flags[i] : 0 }
    @inline(__always) func has(_ i: Int, _ mask: UInt8) -> Bool { i < end && flags[i] & mask != 0 }
    /// `[^\s\p{L}\p{N}]`: a character that is none of letter, number, whitespace.
    @inline(__always) func isOther(_ i: Int) -> Bool { i < end && flags[i] & UnicodeClass.wordOrSpace == 0 }
    @inline(__always) func isNewline(_ i: Int) -> Bool { i < end && (cps[i] == Self.cr || cps[i] == Self.lf) }

    /// Length of a contraction `'s 't 'm 'd 're 've 'll` at `pos` (0 if none).
    @inline(__always)
    func contraction(at pos: Int, caseInsensitive: Bool) -> Int {
        guard cps[pos] == Self.apostrophe, pos + 1 < end else { return 0 }
        var a = cps[pos + 1]
        if caseInsensitive { a = UnicodeClass.asciiLower(a) }
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        default: break
        }
        guard pos + 2 < end else { return 0 }
        var b = cps[pos + 2]
        if caseInsensitive { b = UnicodeClass.asciiLower(b) }
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {  // re ve ll
            return 3
        }
        return 0
    }

    /// Whitespace handling shared by both patterns: `\s+(?!\S)|\s+` (GPT-2) and, when
    /// `newlines` is set, `\s*[\r\n]+|\s+(?!\S)|\s+` (Llama 3). Returns the end of the match.
    @inline(__always)
    func whitespace(at pos: Int, newlines: Bool) -> Int {
        var n = pos
        var afterLastNewline = -1
        while has(n, UnicodeClass.whitespace) {
            if newlines && (cps[n] == Self.cr || cps[n] == Self.lf) { afterLastNewline = n + 1 }
            n += 1
        }
        if afterLastNewline > 0 { return afterLastNewline }  // \s*[\r\n]+
        let count = n - pos
        if count > 1 && n < end { return n - 1 }  // \s+(?!\S): leave the last space to the next word
        if count > 0 { return n }  // \s+
        return pos + 1  // no pattern matches: one character on its own
    }

    func gpt2(_ out: inout [Int]) {
        var pos = start
        while pos < end {
            let c = cps[pos]
            let k = contraction(at: pos, caseInsensitive: false)
            if k > 0 {
                pos += k
                out.append(pos)
                continue
            }
            // ` ?X+` for X in letters, numbers, others: the optional space is taken when followed by X.
            let body = c == Self.space ? pos + 1 : pos
            let f = fl(body)
            if f & UnicodeClass.letter != 0 {
                var p = body + 1
                while has(p, UnicodeClass.letter) { p += 1 }
                pos = p
            } else if f & UnicodeClass.number != 0 {
                var p = body + 1
                while has(p, UnicodeClass.number) { p += 1 }
                pos = p
            } else if isOther(body) {
                var p = body + 1
                while isOther(p) { p += 1 }
                pos = p
            } else {
                pos = whitespace(at: pos, newlines: false)
            }
            out.append(pos)
        }
    }

    func llama3(maxDigits: Int, _ out: inout [Int]) {
        var pos = start
        while pos < end {
            let c = cps[pos]
            let f = flags[pos]
            let k = contraction(at: pos, caseInsensitive: true)
            if k > 0 {
                pos += k
                out.append(pos)
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if c != Self.cr && c != Self.lf && f & UnicodeClass.number == 0
                && (f & UnicodeClass.letter != 0 || has(pos + 1, UnicodeClass.letter))
            {
                var p = pos + 1
                while has(p, UnicodeClass.letter) { p += 1 }
                pos = p
                out.append(pos)
                continue
            }
            // \p{N}{1,k}
            if f & UnicodeClass.number != 0 {
                var p = pos + 1
                while p - pos < maxDigits && has(p, UnicodeClass.number) { p += 1 }
                pos = p
                out.append(pos)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let body = c == Self.space ? pos + 1 : pos
            if isOther(body) {
                var p = body + 1
                while isOther(p) { p += 1 }
                while isNewline(p) { p += 1 }
                pos = p
                out.append(pos)
                continue
            }
            pos = whitespace(at: pos, newlines: true)
            out.append(pos)
        }
    }

    /// `\p{N}` as a splitting regex: each number is a piece, and so is each run of other text.
    func singleNumbers(_ out: inout [Int]) {
        var pos = start
        while pos < end {
            if flags[pos] & UnicodeClass.number != 0 {
                pos += 1
            } else {
                while pos < end && flags[pos] & UnicodeClass.number == 0 { pos += 1 }
            }
            out.append(pos)
        }
    }

    /// Runs of characters in `mask` are pieces, and so are the runs between them.
    func runs(of mask: UInt8, into out: inout [Int]) {
        var pos = start
        while pos < end {
            let inside = flags[pos] & mask != 0
            while pos < end && (flags[pos] & mask != 0) == inside { pos += 1 }
            out.append(pos)
        }
    }

    @inline(__always)
    private func isPunctuationLike(_ i: Int, backtick: Bool) -> Bool {
        if flags[i] & UnicodeClass.punctuation != 0 { return true }
        switch cps[i] {
        case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true  // $ + < = > ^ ~ |
        case 0x60: return backtick
        default: return false
        }
    }

    func punctuationRuns(backtick: Bool, _ out: inout [Int]) {
        var pos = start
        while pos < end {
            let inside = isPunctuationLike(pos, backtick: backtick)
            while pos < end && isPunctuationLike(pos, backtick: backtick) == inside { pos += 1 }
            out.append(pos)
        }
    }

    func asciiDigitTriples(_ out: inout [Int]) {
        @inline(__always) func isDigit(_ i: Int) -> Bool { i < end && cps[i] >= 0x30 && cps[i] <= 0x39 }
        var pos = start
        var pieceStart = start
        while pos < end {
            if isDigit(pos) && isDigit(pos + 1) && isDigit(pos + 2) {
                if pos > pieceStart { out.append(pos) }
                pos += 3
                out.append(pos)
                pieceStart = pos
            } else {
                pos += 1
            }
        }
        if pieceStart < end { out.append(end) }
    }
}
