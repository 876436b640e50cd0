/// Prompt formats for chat models.
///
/// `chatML` renders exactly what SmolLM2's Jinja template (`tokenizer.chat_template` in the GGUF) produces:
/// ```
/// <|im_start|>system\n{content}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n
/// ```
/// and, like that template, inserts the default system message when the first message is not a system message.
public enum ChatTemplate: String, Sendable, Codable, Equatable, CaseIterable {
    case chatML

    /// SmolLM2's default system prompt (from its chat template).
    public static let smolLM2DefaultSystemMessage =
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// The system message inserted when a conversation has none.
    public var defaultSystemMessage: String? {
        switch self {
        case .chatML: return Self.smolLM2DefaultSystemMessage
        }
    }

    /// Text that ends an assistant turn; generation stops when it appears.
    public var stopStrings: [String] {
        switch self {
        case .chatML: return ["<|im_end|>"]
        }
    }

    /// Recognises a template from the GGUF's `tokenizer.chat_template` source; nil when unknown or absent.
    public static func detect(from templateSource: String?) -> ChatTemplate? {
        guard let source = templateSource else { return nil }
        if source.contains("<|im_start|>") { return .chatML }
        return nil
    }

    /// The default system message written literally in a ChatML Jinja template, e.g. SmolLM2's
    /// `'<|im_start|>system\nYou are ...<|im_end|>\n'`; nil when the template has none.
    public static func defaultSystemMessage(inTemplate source: String) -> String? {
        for opener in ["<|im_start|>system\\n", "<|im_start|>system\n"] {
            guard let start = source.range(of: opener) else { continue }
            let rest = source[start.upperBound...]
            guard let end = rest.range(of: "<|im_end|>") else { continue }
            let text = String(rest[..<end.lowerBound])
            // A Jinja expression (e.g. `' + message['content'] + '`) is not a literal default message.
            if text.isEmpty || text.contains("{{") || text.contains("{%") || text.contains("'") || text.contains("\"") {
                continue
            }
            return text.replacingOccurrences(of: "\\n", with: "\n")
        }
        return nil
    }

    /// Renders the conversation; with `addGenerationPrompt` the text ends with an open assistant turn.
    /// A conversation that does not start with a system message gets `defaultSystemMessage` first.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        render(messages, addGenerationPrompt: addGenerationPrompt, defaultSystemMessage: defaultSystemMessage)
    }

    /// As `render(_:addGenerationPrompt:)` with another inserted system message (nil: insert none), e.g. the one
    /// `defaultSystemMessage(inTemplate:)` found in a model's own template.
    public func render(
        _ messages: [ChatMessage], addGenerationPrompt: Bool = true, defaultSystemMessage system: String?
    ) -> String {
        switch self {
        case .chatML:
            var out = ""
            for (index, message) in messages.enumerated() {
                if index == 0, message.role != "system", let system {
                    out += "<|im_start|>system\n\(system)<|im_end|>\n"
                }
                out += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n"
            }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
            return out
        }
    }
}
