import CKernels
import CollabCore
import Foundation
import LLM

/// One work's slice of a forward pass.
struct PassItem {
    let work: CloudWork
    let demand: WorkDemand
    let rows: Int
    let final: Bool
}

extension ContextManager {
    /// Runs one forward pass over every item's rows: cloud-only rows first through layers [0, s)
    /// on their own, then everyone's rows through layers [s, L) together, then the head over the
    /// final items' scored rows. Each item's work is advanced; returns the works that are done.
    /// A failing pass fails every item's work (and counts them done).
    @discardableResult
    func runPass(_ items: [PassItem]) -> Set<ObjectIdentifier> {
        if items.isEmpty { return [] }
        let start = Date()
        let width = model.config.hiddenSize
        let ordered = items.filter(\.work.entersAtEmbeddings) + items.filter { !$0.work.entersAtEmbeddings }
        let lowerCount = ordered.prefix { $0.work.entersAtEmbeddings }.count
        var scoredRows: [Int] = []
        let logits: [Float]
        do {
            var hidden = HiddenStates(rows: 0, width: width)
            var segments: [BatchSegment] = []
            for item in ordered {
                let begin = hidden.rows
                switch try item.work.input(rows: item.rows, in: self) {
                case .tokens(let tokens): hidden.append(try model.embed(tokens))
                case .states(let states): hidden.append(states)
                }
                segments.append(BatchSegment(cache: item.demand.cache, position: item.demand.position, count: item.rows))
                if item.final { scoredRows += (begin + item.rows - item.demand.scored)..<(begin + item.rows) }
            }
            if lowerCount > 0, splitLayer > 0 {
                let lowerRows = segments.prefix(lowerCount).reduce(0) { $0 + $1.count }
                var lower = hidden.rows(0..<lowerRows)
                try model.forward(&lower, batch: Array(segments.prefix(lowerCount)), only: 0..<splitLayer)
                hidden.values.replaceSubrange(0..<(lowerRows * width), with: lower.values)
            }
            try model.forward(&hidden, batch: segments, only: cloudLayers)
            logits = scoredRows.isEmpty ? [] : try model.logits(hidden, rows: scoredRows)
        } catch {
            let failure = CollabError(wrapping: error)
            for item in ordered { item.work.fail(CollabError(.internal, "forward pass failed: \(failure.message)")) }
            return Set(items.map { ObjectIdentifier($0.work) })
        }
        let totalRows = ordered.reduce(0) { $0 + $1.rows }
        let report = PassReport(rows: totalRows, works: ordered.count, seconds: Date().timeIntervalSince(start))
        // Split rows only: cloud-only rows are counted as full-model rows by their work.
        noteBatch(sessions: ordered.count, rows: ordered.filter { !$0.work.entersAtEmbeddings }.reduce(0) { $0 + $1.rows })
        let vocab = model.config.vocabularySize
        var offset = 0
        var done = Set<ObjectIdentifier>()
        for item in ordered {
            var slice: ArraySlice<Float> = []
            if item.final {
                slice = logits[(offset * vocab)..<((offset + item.demand.scored) * vocab)]
                offset += item.demand.scored
                // A NaN logit (a model or state gone wrong) would sample token 0 silently: fail loudly.
                let nonFinite = slice.withUnsafeBufferPointer { Int(ck_count_outside($0.baseAddress, Int64($0.count), .greatestFiniteMagnitude)) }
                if nonFinite > 0 {
                    item.work.fail(CollabError(.internal, "the model produced \(nonFinite) non-finite logits"))
                    done.insert(ObjectIdentifier(item.work))
                    continue
                }
            }
            if item.work.advance(rows: item.rows, final: item.final, logits: slice, pass: report, in: self) {
                done.insert(ObjectIdentifier(item.work))
            }
        }
        return done
    }
}
