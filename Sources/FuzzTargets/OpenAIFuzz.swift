import Foundation
import LLM
import Serve

/// An OpenAI request body through `RequestPlanner` (what `APIServer` runs before generating). First byte:
/// bit 0 chat (else completion), bit 1 no chat template, bit 2 a tiny context (16 tokens).
enum OpenAIFuzz {
    nonisolated(unsafe) static var format: ChatFormat??

    static func run(_ data: [UInt8]) {
        guard let tokenizer = try? FuzzModel.shared.tokenizer, let file = try? FuzzModel.shared.file else {
            fatalError("no model: \(FuzzModel.path)")
        }
        if format == nil { format = .some(try? ChatFormat.choose(name: nil, gguf: file, tokenizer: tokenizer)) }
        var input = FuzzInput(data)
        let flags = input.byte()
        let context = flags & 4 != 0 ? 16 : 2048
        let planner = RequestPlanner(tokenizer: tokenizer, contextLength: context, chatFormat: flags & 2 != 0 ? nil : format!)
        let body = Data(input.rest())
        guard let plan = try? (flags & 1 != 0 ? planner.chat(body: body) : planner.completion(body: body)) else { return }
        let g = plan.generation
        fuzzCheck(!g.prompt.isEmpty && g.prompt.count < context, "prompt of \(g.prompt.count) tokens accepted")
        fuzzCheck(g.maxTokens >= 1 && g.prompt.count + g.maxTokens <= context, "max tokens \(g.maxTokens) accepted")
        fuzzCheck(g.prompt.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "prompt token out of the vocabulary")
        fuzzCheck((try? g.sampling.validate()) != nil, "invalid sampling accepted")
    }

    static func seeds() -> [[UInt8]] {
        let chats = [
            #"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":8,"temperature":0.7,"top_p":0.9,"seed":3,"stream":true,"stream_options":{"include_usage":true},"n":1}"#,
            #"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null}],"max_completion_tokens":4}"#,
            #"{"messages":[{"role":"tool","content":"x"}]}"#,
        ]
        let completions = [
            #"{"model":"m","prompt":"Once upon a time","max_tokens":16,"temperature":1.5,"stream":false}"#,
            #"{"prompt":"x","max_tokens":0,"n":2,"top_p":-1}"#,
        ]
        var seeds: [[UInt8]] = []
        for chat in chats { seeds.append([1] + Array(chat.utf8)) }
        for completion in completions { seeds.append([0] + Array(completion.utf8)) }
        seeds.append([5] + Array(chats[0].utf8))
        return seeds
    }
}
