import Foundation
import LLM

/// What one `bench collab` invocation will run.
package struct CollabBenchPlan: Sendable {
    package var modelPath: String
    package var layers: Int
    package var split: Int
    package var exits: String
    package var wire: String
    package var maxTokens: Int
    package var qaMaxTokens: Int
    package var threads: Int
    package var generateArgs: [String]
    package var modes: [GenerationMode]
    package var links: [LinkSetting]
    package var thresholds: [BenchThreshold]
    package var prompts: [BenchPrompt]
    package var launcher: ChildLauncher
    package var edgeCPU: Int?
    package var cloudCPU: Int?
    package var timeout: Double
    package var quick: Bool

    /// Configurations in run order: (mode, link, threshold); link-free modes once, cloud modes per link.
    package var configurations: [(mode: GenerationMode, link: LinkSetting?, threshold: BenchThreshold?)] {
        var out: [(GenerationMode, LinkSetting?, BenchThreshold?)] = []
        let perThreshold = { (mode: GenerationMode) -> [BenchThreshold?] in
            mode.usesExits && !exits.isEmpty ? thresholds.map { $0 } : [nil]
        }
        for mode in modes where !mode.needsCloud {
            for t in perThreshold(mode) { out.append((mode, nil, t)) }
        }
        for link in links {
            for mode in modes where mode.needsCloud {
                for t in perThreshold(mode) { out.append((mode, link, t)) }
            }
        }
        return out
    }

    package init(modelPath: String, layers: Int, split: Int, exits: String, wire: String, maxTokens: Int, qaMaxTokens: Int, threads: Int, generateArgs: [String], modes: [GenerationMode], links: [LinkSetting], thresholds: [BenchThreshold], prompts: [BenchPrompt], launcher: ChildLauncher, edgeCPU: Int? = nil, cloudCPU: Int? = nil, timeout: Double, quick: Bool) {
        self.modelPath = modelPath
        self.layers = layers
        self.split = split
        self.exits = exits
        self.wire = wire
        self.maxTokens = maxTokens
        self.qaMaxTokens = qaMaxTokens
        self.threads = threads
        self.generateArgs = generateArgs
        self.modes = modes
        self.links = links
        self.thresholds = thresholds
        self.prompts = prompts
        self.launcher = launcher
        self.edgeCPU = edgeCPU
        self.cloudCPU = cloudCPU
        self.timeout = timeout
        self.quick = quick
    }
}
