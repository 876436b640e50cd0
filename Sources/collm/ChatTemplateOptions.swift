import ArgumentParser
import LLM

/// `--template NAME`: the chat template of commands that wrap prompts as chat turns, overriding the one detected
/// from the model (its `tokenizer.chat_template`, else its turn tokens).
struct ChatTemplateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Chat template (default: detected from the model).",
        discussion: "One of: \(ChatTemplate.names.joined(separator: ", ")) (llama.cpp's names)."))
    var template: String?

    func validate() throws {
        if let template, ChatTemplate(name: template) == nil {
            throw ValidationError(ChatTemplateError.unknownName(template).description)
        }
    }

    /// The chat format for the model in `gguf`: `--template`, else detected; a clear error when neither works.
    func chatFormat(gguf: GGUFFile, tokenizer: Tokenizer) throws -> ChatFormat {
        do {
            return try ChatFormat.choose(name: template, gguf: gguf, tokenizer: tokenizer)
        } catch let error as ChatTemplateError {
            throw CLIError(error.description)
        }
    }
}
