import Foundation
import LLM
import TestSupport
import XCTest

@testable import ExitTraining

/// The default model (TestSupport's `ModelFixture`) and its f32 head, loaded once for all tests in the process.
enum HeadFixture {
    nonisolated(unsafe) private static var cached: FrozenHead?
    static var pool: ThreadPool { ModelFixture.pool }

    static func load() throws -> (tokenizer: Tokenizer, model: LlamaModel, head: FrozenHead) {
        let (file, tokenizer, model) = try ModelFixture.load()
        if cached == nil { cached = try FrozenHead(file: file) }
        return (tokenizer, model, cached!)
    }
}
