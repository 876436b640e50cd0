import Foundation
import LLM

/// The OpenAI-compatible request and response bodies we accept and produce. Fields we do not
/// implement are ignored on input (like most compatible servers); unknown roles are rejected.
struct ChatCompletionRequest: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var role: String
        /// nil when the client sent `null` (OpenAI allows it for assistant messages) or left it out.
        var content: MessageContent?
    }

    var model: String?
    var messages: [Message]
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var temperature: Float?
    var top_p: Float?
    var seed: UInt64?
    var stream: Bool?
    var stream_options: StreamOptions?
    var n: Int?
}

struct CompletionRequest: Decodable, Sendable {
    var model: String?
    var prompt: String
    var max_tokens: Int?
    var temperature: Float?
    var top_p: Float?
    var seed: UInt64?
    var stream: Bool?
    var stream_options: StreamOptions?
    var n: Int?
}

/// A message's content as OpenAI accepts it: a string, or an array of parts of which we read the
/// text parts (other kinds, such as images, are refused by the handler).
struct MessageContent: Decodable, Sendable {
    struct Part: Decodable, Sendable {
        var type: String
        var text: String?
    }

    var parts: [Part]

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            parts = [Part(type: "text", text: text)]
        } else {
            parts = try container.decode([Part].self)
        }
    }

    /// The text of every part, or nil when a part is not text.
    var text: String? {
        var out = ""
        for part in parts {
            guard part.type == "text", let text = part.text else { return nil }
            out += text
        }
        return out
    }
}

/// `stream_options`: with `include_usage`, a last chunk (empty `choices`) carries the usage.
struct StreamOptions: Decodable, Sendable {
    var include_usage: Bool?
}

struct Usage: Encodable, Sendable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
}

/// How the edge produced the answer: our extension of the OpenAI object, under "collm".
struct CollabInfo: Encodable, Sendable {
    var mode: String
    var sources: [TokenSource]
    var edge_rate: Double
    var bytes_up: Int
    var bytes_down: Int
    var round_trips: Int
    var seconds: Double
}

struct ChatCompletion: Encodable {
    struct Message: Encodable {
        var role: String
        var content: String
    }

    struct Choice: Encodable {
        var index = 0
        var message: Message
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

struct ChatCompletionChunk: Encodable, Sendable {
    struct Delta: Encodable, Sendable {
        var role: String?
        var content: String?
    }

    struct Choice: Encodable, Sendable {
        var index = 0
        var delta: Delta
        var finish_reason: String?
    }

    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
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
