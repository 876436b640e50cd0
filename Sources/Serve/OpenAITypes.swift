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

    var messages: [Message]
    var max_completion_tokens: Int?
    var options: RequestOptions

    private enum CodingKeys: String, CodingKey { case messages, max_completion_tokens }

    init(from decoder: Decoder) throws {
        let fields = try decoder.container(keyedBy: CodingKeys.self)
        messages = try fields.decode([Message].self, forKey: .messages)
        max_completion_tokens = try fields.decodeIfPresent(Int.self, forKey: .max_completion_tokens)
        options = try RequestOptions(from: decoder)
    }
}

struct CompletionRequest: Decodable, Sendable {
    var prompt: String
    var options: RequestOptions

    private enum CodingKeys: String, CodingKey { case prompt }

    init(from decoder: Decoder) throws {
        prompt = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .prompt)
        options = try RequestOptions(from: decoder)
    }
}

/// The fields chat and text completion requests share, read from the same JSON object.
struct RequestOptions: Decodable, Sendable {
    var model: String?
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

/// The envelope of every completion body and stream chunk (OpenAI's schema), over its kind of choice.
/// `usage` and `collm` are left out of a chunk that does not carry them.
struct Completion<Choice: Encodable & Sendable>: Encodable, Sendable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
    var collm: CollabInfo?
}

/// A chat answer's choice: the whole message (`chat.completion`) or a stream's delta (`chat.completion.chunk`).
struct ChatChoice: Encodable, Sendable {
    struct Message: Encodable, Sendable {
        var role: String?
        var content: String?
    }

    var index = 0
    var message: Message?
    var delta: Message?
    var finish_reason: String?
}

/// A text completion's choice (`text_completion`, whole or streamed).
struct TextChoice: Encodable, Sendable {
    var index = 0
    var text: String
    var finish_reason: String?
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
