import Foundation

/// The coverage-guided fuzz targets (scripts/fuzz.sh; README "Fuzzing"). Each takes arbitrary bytes and
/// must return without trapping: malformed input is refused with an error, never a crash. The same
/// functions replay the committed crashers in `Tests/FuzzTests` (Tests/FuzzRegressions/TARGET/).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// GGUF bytes: `GGUFFile`, then `ModelConfig`, `Tokenizer(gguf:)` and `LlamaModel` when they parse.
    case gguf
    /// Text to encode (and decode back) or token ids to decode with the default model's tokenizer.
    case tokenizer
    /// `HiddenStateCodec` decoding of f32 / f16 / q8 payloads with arbitrary widths and row counts.
    case codec
    /// A sequence of `Collm_V1_EdgeMessage`s through the cloud's session handler on the default model's layers [15, 30).
    case session
    /// An OpenAI chat or completion request body through the API's checks (`RequestPlanner`).
    case openai

    /// Runs one input.
    public func run(_ data: [UInt8]) {
        switch self {
        case .gguf: GGUFFuzz.run(data)
        case .tokenizer: TokenizerFuzz.run(data)
        case .codec: CodecFuzz.run(data)
        case .session: SessionFuzz.run(data)
        case .openai: OpenAIFuzz.run(data)
        }
    }

    /// A few valid inputs to start the corpus from.
    public func seeds() throws -> [[UInt8]] {
        switch self {
        case .gguf: return try GGUFFuzz.seeds()
        case .tokenizer: return TokenizerFuzz.seeds()
        case .codec: return try CodecFuzz.seeds()
        case .session: return try SessionFuzz.seeds()
        case .openai: return OpenAIFuzz.seeds()
        }
    }

    /// Loads what the target needs (the default model) before the first input, so that start-up is not
    /// counted against the first input's time.
    public func prepare() throws {
        switch self {
        case .gguf, .codec: break
        case .tokenizer, .openai: _ = try FuzzModel.shared.tokenizer
        case .session: _ = try SessionFuzz.engine()
        }
    }
}

/// A fuzz invariant that does not hold: a bug, reported as a crash so that libFuzzer keeps the input.
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz invariant failed: \(message())") }
}

// MARK: - C entry points (Sources/FuzzDriver)

nonisolated(unsafe) private var selected: FuzzTarget?

/// Selects the target by name and prepares it; 0 on success.
@_cdecl("collm_fuzz_select")
public func collmFuzzSelect(_ name: UnsafePointer<CChar>) -> Int32 {
    guard let target = FuzzTarget(rawValue: String(cString: name)) else {
        FileHandle.standardError.write(Data("unknown fuzz target '\(String(cString: name))' (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))\n".utf8))
        return 1
    }
    do {
        try target.prepare()
    } catch {
        FileHandle.standardError.write(Data("fuzz target \(target.rawValue): \(error)\n".utf8))
        return 1
    }
    selected = target
    return 0
}

/// Runs one input through the selected target.
@_cdecl("collm_fuzz_one")
public func collmFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let target = selected else { fatalError("collm_fuzz_select was not called") }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    target.run(bytes)
    return 0
}

/// Writes the selected target's seeds into `dir` (seed-0, seed-1, ...); 0 on success.
@_cdecl("collm_fuzz_write_seeds")
public func collmFuzzWriteSeeds(_ dir: UnsafePointer<CChar>) -> Int32 {
    guard let target = selected else { return 1 }
    do {
        let url = URL(fileURLWithPath: String(cString: dir))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (i, seed) in try target.seeds().enumerated() {
            try Data(seed).write(to: url.appendingPathComponent("seed-\(i)"))
        }
        return 0
    } catch {
        FileHandle.standardError.write(Data("seeds for \(target.rawValue): \(error)\n".utf8))
        return 1
    }
}
