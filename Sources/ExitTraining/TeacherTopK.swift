import CKernels

/// Teacher targets from the full model's logits: for each row, its k most probable tokens
/// (descending) and their softmax probabilities over the whole vocabulary.
public enum TeacherTopK {
    /// `logits`: rows x vocabularySize. Returns rows x k ids and probabilities (row r's top-1 is ids[r * k]).
    public static func compute(logits: [Float], vocabularySize: Int, k: Int) -> (ids: [Int32], probabilities: [Float]) {
        precondition(vocabularySize > 0 && logits.count % vocabularySize == 0 && k > 0 && k <= vocabularySize)
        let rows = logits.count / vocabularySize
        var ids = [Int32](repeating: 0, count: rows * k)
        var probs = [Float](repeating: 0, count: rows * k)
        logits.withUnsafeBufferPointer { l in
            ids.withUnsafeMutableBufferPointer { i in
                probs.withUnsafeMutableBufferPointer { p in
                    ck_topk_softmax(l.baseAddress!, Int64(vocabularySize), Int64(k), i.baseAddress!, p.baseAddress!, 0, Int64(rows))
                }
            }
        }
        return (ids, probs)
    }
}
