/// Writes a conversation in one template family's format, as llama.cpp's `llm_chat_apply_template` does
/// (with `add_ass` = `addGenerationPrompt`). Roles are passed through as given, except where a family renames them
/// (Gemma's "model").
struct ChatTemplateRenderer {
    let template: ChatTemplate

    func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        switch template {
        case .chatML: return chatML(messages, addGenerationPrompt)
        case .llama2, .llama2System, .llama2SystemBOS, .llama2SystemStrip: return llama2(messages)
        case .mistralV1, .mistralV3, .mistralV3Tekken: return mistralInstruct(messages)
        case .mistralV7, .mistralV7Tekken: return mistralV7(messages)
        case .phi3: return phi3(messages, addGenerationPrompt)
        case .gemma: return gemma(messages, addGenerationPrompt)
        case .llama3: return llama3(messages, addGenerationPrompt)
        }
    }

    private func chatML(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        var out = ""
        for message in messages {
            out += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n"
        }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    /// Llama 2 and its variants: one `[INST]` turn per user message, closed by the assistant's `</s>`.
    private func llama2(_ messages: [ChatMessage]) -> String {
        let supportsSystem = template != .llama2
        let bosInsideHistory = template == .llama2SystemBOS
        let strip = template == .llama2SystemStrip
        var out = "[INST] "
        var insideTurn = true  // the first turn's opening is written above (the tokenizer adds BOS)
        for message in messages {
            let content = strip ? trimmingSpaces(message.content) : message.content
            if !insideTurn {
                insideTurn = true
                out += bosInsideHistory ? "<s>[INST] " : "[INST] "
            }
            switch message.role {
            case "system":
                // Without <<SYS>> support the system text still opens the first turn, as plain text.
                out += supportsSystem ? "<<SYS>>\n\(content)\n<</SYS>>\n\n" : "\(content)\n"
            case "user":
                out += "\(content) [/INST]"
            default:
                out += "\(content)</s>"
                insideTurn = false
            }
        }
        return out
    }

    /// Mistral v1, v3 and v3-tekken: the system text goes into the open `[INST]` turn before the user's.
    private func mistralInstruct(_ messages: [ChatMessage]) -> String {
        let leadingSpace = template == .mistralV1 ? " " : ""
        let trailingSpace = template == .mistralV3Tekken ? "" : " "
        let trimAssistant = template == .mistralV3
        var out = ""
        var insideTurn = false
        for message in messages {
            if !insideTurn {
                out += "\(leadingSpace)[INST]\(trailingSpace)"
                insideTurn = true
            }
            switch message.role {
            case "system":
                out += "\(message.content)\n\n"
            case "user":
                out += "\(message.content)\(leadingSpace)[/INST]"
            default:
                out += trailingSpace + (trimAssistant ? trimmingSpaces(message.content) : message.content) + "</s>"
                insideTurn = false
            }
        }
        return out
    }

    /// Mistral v7 and v7-tekken: the system message has its own `[SYSTEM_PROMPT]` block.
    private func mistralV7(_ messages: [ChatMessage]) -> String {
        let space = template == .mistralV7 ? " " : ""
        var out = ""
        for message in messages {
            switch message.role {
            case "system": out += "[SYSTEM_PROMPT]\(space)\(message.content)[/SYSTEM_PROMPT]"
            case "user": out += "[INST]\(space)\(message.content)[/INST]"
            default: out += "\(space)\(message.content)</s>"
            }
        }
        return out
    }

    private func phi3(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        var out = ""
        for message in messages {
            out += "<|\(message.role)|>\n\(message.content)<|end|>\n"
        }
        if addGenerationPrompt { out += "<|assistant|>\n" }
        return out
    }

    /// Gemma has no system role: system text is trimmed and joined to the next user turn.
    private func gemma(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        var out = ""
        var pendingSystem = ""
        for message in messages {
            if message.role == "system" {
                pendingSystem += trimmingSpaces(message.content)
                continue
            }
            let role = message.role == "assistant" ? "model" : message.role
            out += "<start_of_turn>\(role)\n"
            if !pendingSystem.isEmpty && role != "model" {
                out += pendingSystem + "\n\n"
                pendingSystem = ""
            }
            out += trimmingSpaces(message.content) + "<end_of_turn>\n"
        }
        if addGenerationPrompt { out += "<start_of_turn>model\n" }
        return out
    }

    private func llama3(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        var out = ""
        for message in messages {
            out += "<|start_header_id|>\(message.role)<|end_header_id|>\n\n\(trimmingSpaces(message.content))<|eot_id|>"
        }
        if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        return out
    }

    /// Drops leading and trailing ASCII whitespace (C's `isspace`: space, \t, \n, \v, \f, \r) as llama.cpp's
    /// `trim` does; other Unicode spaces stay.
    private func trimmingSpaces(_ text: String) -> String {
        let scalars = text.unicodeScalars
        func isSpace(_ s: Unicode.Scalar) -> Bool { s == " " || (0x09...0x0D).contains(s.value) }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isSpace($0) })!
        return String(scalars[first...last])
    }
}
