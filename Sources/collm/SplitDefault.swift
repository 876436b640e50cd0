import ArgumentParser
import LLM

/// Where the edge hands over to the cloud when `--split` is not given: after two thirds of the layers
/// (the default model: 20 of 30; Gemma 3 270M: 12 of 18). Chosen from the measured exit curves as the
/// best edge share at 90% precision per layer the edge runs, and the cloud then does a third of the
/// layer work (docs/RESULTS.md, "Choosing the default split"). Every command resolves it here, so an
/// edge and a cloud started without `--split` agree.
enum SplitDefault {
    static let help = "Split layer s: the edge runs layers [0, s), the cloud [s, L) (default: two thirds of the layers, 20 for the default model)."

    static func layer(layerCount: Int) -> Int { max(1, layerCount * 2 / 3) }

    /// `--split` if given, else the default; checked against the model.
    static func resolve(_ split: Int?, layerCount: Int) throws -> Int {
        let s = split ?? layer(layerCount: layerCount)
        guard s > 0, s < layerCount else { throw ValidationError("--split must be in 1..<\(layerCount) (got \(s))") }
        return s
    }

    /// As above, reading the layer count from the model file.
    static func resolve(_ split: Int?, gguf: GGUFFile) throws -> Int {
        try resolve(split, layerCount: try ModelConfig(gguf: gguf).layerCount)
    }
}
