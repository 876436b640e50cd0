/// The chat template a model is prompted with, and the system message it inserts when a conversation has none:
/// chosen by `--template NAME`, else detected from the model's `tokenizer.chat_template`, else inferred from the
/// turn tokens of its vocabulary (`ChatTemplate.inferred(fromVocabulary:)`).
public struct ChatFormat: Sendable, Equatable {
    /// Where the template came from, for messages.
    public enum Origin: String, Sendable, Equatable {
        case option, modelTemplate, vocabulary
    }

    public let template: ChatTemplate
    /// The default system message written in the model's own ChatML template (SmolLM2's), else nil.
    public let defaultSystemMessage: String?
    public let origin: Origin

    public init(template: ChatTemplate, defaultSystemMessage: String?, origin: Origin) {
        self.template = template
        self.defaultSystemMessage = defaultSystemMessage
        self.origin = origin
    }

    /// Chooses the format for a model whose template source is `templateSource` (nil: the GGUF has none) and
    /// whose vocabulary answers `hasToken`; `name` (from `--template`) overrides detection.
    public static func choose(
        name: String?, templateSource: String?, hasToken: (String) -> Bool
    ) throws -> ChatFormat {
        let system = templateSource.flatMap(ChatTemplate.defaultSystemMessage(inTemplate:))
        func format(_ template: ChatTemplate, _ origin: Origin) -> ChatFormat {
            ChatFormat(template: template, defaultSystemMessage: template == .chatML ? system : nil, origin: origin)
        }
        if let name {
            guard let template = ChatTemplate(name: name) else { throw ChatTemplateError.unknownName(name) }
            return format(template, .option)
        }
        if let source = templateSource, !source.isEmpty {
            guard let family = ChatTemplate.llamaCppFamilyName(of: source) else {
                throw ChatTemplateError.unrecognized(excerpt: String(source.prefix(60)))
            }
            guard let template = ChatTemplate(name: family) else { throw ChatTemplateError.unsupportedFamily(family) }
            return format(template, .modelTemplate)
        }
        guard let template = ChatTemplate.inferred(fromVocabulary: hasToken) else { throw ChatTemplateError.missing }
        return format(template, .vocabulary)
    }

    /// The format of the model in `gguf` (its `tokenizer.chat_template` and `tokenizer`'s vocabulary).
    public static func choose(name: String?, gguf: GGUFFile, tokenizer: Tokenizer) throws -> ChatFormat {
        try choose(name: name, templateSource: gguf.string("tokenizer.chat_template")) { tokenizer.tokenId(for: $0) != nil }
    }

    /// The conversation as the model's prompt, ending with an open assistant turn when `addGenerationPrompt`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        template.render(messages, addGenerationPrompt: addGenerationPrompt, defaultSystemMessage: defaultSystemMessage)
    }

    /// A single user message as the model's prompt.
    public func render(user text: String) -> String {
        render([.user(text)])
    }
}
