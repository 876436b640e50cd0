/// Prompt formats for chat models: the built-in templates of llama.cpp (`llm_chat_apply_template` in
/// `src/llama-chat.cpp`) for the families collm renders, under llama.cpp's names (`--template NAME`).
///
/// Rendering is not a Jinja interpreter: like llama.cpp, each family writes its fixed format, which is what the
/// models were trained on. The expected strings of llama.cpp's `tests/test-chat-template.cpp` are the reference
/// (`ChatTemplateTests`). `detect(from:)` recognises a family from a GGUF's `tokenizer.chat_template` the way
/// llama.cpp's `llm_chat_detect_template` does.
///
/// `chatML` is also what SmolLM2's own Jinja template produces, and like that template it inserts a default
/// system message when the conversation has none (see `defaultSystemMessage`).
public enum ChatTemplate: String, Sendable, Codable, Equatable, CaseIterable {
    /// `<|im_start|>role\n...<|im_end|>\n` (SmolLM2, Qwen, OpenHermes, ...).
    case chatML = "chatml"
    /// `[INST] ... [/INST]` without system support: a system message opens the first turn as plain text.
    case llama2 = "llama2"
    /// Llama 2 with a `<<SYS>>` block.
    case llama2System = "llama2-sys"
    /// Llama 2 with `<<SYS>>`, and `<s>` before every later `[INST]`.
    case llama2SystemBOS = "llama2-sys-bos"
    /// Llama 2 with `<<SYS>>`, every message's content trimmed.
    case llama2SystemStrip = "llama2-sys-strip"
    /// Mistral's official "v1": ` [INST] ... [/INST]`, system text before the first user message.
    case mistralV1 = "mistral-v1"
    /// Mistral's "v3": `[INST] ...[/INST]`, assistant answers trimmed.
    case mistralV3 = "mistral-v3"
    /// Mistral's "v3-tekken": as v3 without the spaces.
    case mistralV3Tekken = "mistral-v3-tekken"
    /// Mistral's "v7": `[SYSTEM_PROMPT] ...[/SYSTEM_PROMPT][INST] ...[/INST]`.
    case mistralV7 = "mistral-v7"
    /// Mistral's "v7-tekken": as v7 without the spaces.
    case mistralV7Tekken = "mistral-v7-tekken"
    /// `<|role|>\n...<|end|>\n` (Phi-3).
    case phi3 = "phi3"
    /// `<start_of_turn>user\n...<end_of_turn>\n`, "assistant" is "model", the system message joins the first user turn.
    case gemma = "gemma"
    /// `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>` (Llama 3).
    case llama3 = "llama3"

    /// llama.cpp's name for the template, accepted by `--template`.
    public var name: String { rawValue }

    /// The template named `name` (llama.cpp's names, e.g. "gemma", "llama3"); nil when collm has none by that name.
    public init?(name: String) {
        self.init(rawValue: name)
    }

    /// Every name `--template` accepts, in a stable order for messages.
    public static var names: [String] { allCases.map(\.name) }

    /// SmolLM2's default system prompt (from its chat template).
    public static let smolLM2DefaultSystemMessage =
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// The system message `render(_:addGenerationPrompt:)` inserts when a conversation has none: SmolLM2's for
    /// ChatML (the default model's behaviour), none for the other families (llama.cpp inserts none).
    public var defaultSystemMessage: String? {
        switch self {
        case .chatML: return Self.smolLM2DefaultSystemMessage
        default: return nil
        }
    }

    /// Text that ends an assistant turn; generation stops when it appears.
    public var stopStrings: [String] {
        switch self {
        case .chatML: return ["<|im_end|>"]
        case .llama2, .llama2System, .llama2SystemBOS, .llama2SystemStrip,
            .mistralV1, .mistralV3, .mistralV3Tekken, .mistralV7, .mistralV7Tekken:
            return ["</s>"]
        case .phi3: return ["<|end|>"]
        case .gemma: return ["<end_of_turn>"]
        case .llama3: return ["<|eot_id|>"]
        }
    }

    /// Renders the conversation; with `addGenerationPrompt` the text ends with an open assistant turn (the
    /// Llama 2 and Mistral formats have none: their text already ends where the answer starts).
    /// A conversation that does not start with a system message gets `defaultSystemMessage` first.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        render(messages, addGenerationPrompt: addGenerationPrompt, defaultSystemMessage: defaultSystemMessage)
    }

    /// As `render(_:addGenerationPrompt:)` with another inserted system message (nil: insert none), e.g. the one
    /// `defaultSystemMessage(inTemplate:)` found in a model's own template.
    public func render(
        _ messages: [ChatMessage], addGenerationPrompt: Bool = true, defaultSystemMessage system: String?
    ) -> String {
        var conversation = messages
        // As SmolLM2's Jinja template: inserted inside the message loop, so an empty conversation gets none.
        if let system, let first = messages.first, first.role != "system" {
            conversation.insert(.system(system), at: 0)
        }
        return ChatTemplateRenderer(template: self).render(conversation, addGenerationPrompt: addGenerationPrompt)
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
}
