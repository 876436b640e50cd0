import Foundation

/// Why no chat template could be chosen. Every description names `--template NAME` and the names it accepts.
public enum ChatTemplateError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// `--template` named no template collm has.
    case unknownName(String)
    /// The model's template is of a family llama.cpp knows (its name) but collm does not render.
    case unsupportedFamily(String)
    /// The model's template matches no known family; `excerpt` is its beginning.
    case unrecognized(excerpt: String)
    /// The model has no `tokenizer.chat_template` and its vocabulary does not name a family.
    case missing

    public var description: String {
        let choose = "pass --template NAME, one of: \(ChatTemplate.names.joined(separator: ", "))"
        switch self {
        case .unknownName(let name):
            return "unknown chat template '\(name)'; \(choose)"
        case .unsupportedFamily(let family):
            return "the model's chat template is llama.cpp's '\(family)', which collm does not render; \(choose)"
        case .unrecognized(let excerpt):
            return "the model's chat template (\"\(excerpt)\") matches no template family collm knows; \(choose)"
        case .missing:
            return "the model has no chat template (no tokenizer.chat_template, no known turn tokens); \(choose)"
        }
    }

    public var errorDescription: String? { description }
}
