import Foundation

/// The OpenAI-compatible request and response bodies we accept and produce. Fields we do not
/// implement are ignored on input (like most compatible servers); unknown roles are rejected.
struct ChatCompletionRequest: Decodable, Sendable {
    struct Message: Codable, Sendable {
        var role: String
        var content: String
    }

    var model: String?
    var messages: [Message]
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var temperature: Float?
    var top_p: Float?
    var seed: UInt64?
    var stream: Bool?
}

struct CompletionRequest: Decodable, Sendable {
    var model: String?
    var prompt: String
    var max_tokens: Int?
    var temperature: Float?
    var top_p: Float?
    var seed: UInt64?
    var stream: Bool?
}

struct Usage: Encodable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
}

/// How the edge produced the answer: our extension of the OpenAI object, under "collm".
struct CollabInfo: Encodable {
    var mode: String
    var sources: [String]
    var edge_rate: Double
    var bytes_up: Int
    var bytes_down: Int
    var round_trips: Int
    var seconds: Double
}

struct ChatCompletion: Encodable {
    struct Choice: Encodable {
        var index = 0
        var message: ChatCompletionRequest.Message
        var finish_reason: String
    }

    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
    var collm: CollabInfo
}

struct ChatCompletionChunk: Encodable {
    struct Delta: Encodable {
        var role: String?
        var content: String?
    }

    struct Choice: Encodable {
        var index = 0
        var delta: Delta
        var finish_reason: String?
    }

    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [Choice]
    var collm: CollabInfo?
}

struct TextCompletion: Encodable {
    struct Choice: Encodable {
        var index = 0
        var text: String
        var finish_reason: String
    }

    var id: String
    var object = "text_completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
    var collm: CollabInfo
}

struct ModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "collm"
    }

    var object = "list"
    var data: [Model]
}

/// OpenAI's error body: {"error": {"message", "type", "code"}}.
struct APIErrorBody: Encodable {
    struct Detail: Encodable {
        var message: String
        var type: String
        var code: String?
    }

    var error: Detail
}
