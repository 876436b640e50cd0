/// Accuracy of a response against the full model's response for the same prompt.
package enum TextMetrics {
    /// Position-wise token agreement: matching positions over the longer sequence (1 when both are empty).
    package static func tokenAgreement(_ output: [Int], reference: [Int]) -> Double {
        let longest = max(output.count, reference.count)
        if longest == 0 { return 1 }
        return Double(zip(output, reference).filter { $0 == $1 }.count) / Double(longest)
    }

    /// ROUGE-L F1 over lowercase words: longest common subsequence against both lengths.
    package static func rougeL(_ candidate: String, reference: String) -> Double {
        let a = BenchPrompt.normalise(candidate).split(separator: " ")
        let b = BenchPrompt.normalise(reference).split(separator: " ")
        if a.isEmpty && b.isEmpty { return 1 }
        if a.isEmpty || b.isEmpty { return 0 }
        var previous = [Int](repeating: 0, count: b.count + 1)
        var current = previous
        for i in 1...a.count {
            for j in 1...b.count {
                current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            swap(&previous, &current)
        }
        let lcs = Double(previous[b.count])
        if lcs == 0 { return 0 }
        let precision = lcs / Double(a.count)
        let recall = lcs / Double(b.count)
        return 2 * precision * recall / (precision + recall)
    }
}
