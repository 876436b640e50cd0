/// Recognising a template family from a model's Jinja source (`tokenizer.chat_template`) by the marker strings
/// llama.cpp's `llm_chat_detect_template` looks for, in its order: the order matters, because several families
/// share markers (Phi-4 and SmolVLM contain `<|im_start|>` but are not ChatML; a Llama 2 template is any
/// `[INST]` one without Mistral's own signs).
extension ChatTemplate {
    /// The template family of `templateSource`; nil when it is absent, unrecognised, or a family collm does not
    /// render (`llamaCppFamilyName(of:)` says which).
    public static func detect(from templateSource: String?) -> ChatTemplate? {
        guard let source = templateSource, let family = llamaCppFamilyName(of: source) else { return nil }
        return ChatTemplate(name: family)
    }

    /// The name llama.cpp gives the family of `source` (a Jinja template or a template name), for every family
    /// whose checks come before Llama 3's in llama.cpp's order, including those collm does not render (e.g.
    /// "phi4", "zephyr"); nil when none of them matches.
    public static func llamaCppFamilyName(of source: String) -> String? {
        if let named = ChatTemplate(name: source) { return named.name }
        func has(_ marker: String) -> Bool { source.contains(marker) }

        if has("<|im_start|>") {
            if has("<|im_sep|>") { return "phi4" }
            if has("<end_of_utterance>") { return "smolvlm" }  // <|im_start|> is SmolVLM's BOS, not ChatML
            return ChatTemplate.chatML.name
        }
        if source.hasPrefix("mistral") || has("[INST]") { return instructFamily(of: source) }
        if has("<|assistant|>") && has("<|end|>") { return ChatTemplate.phi3.name }
        if has("[gMASK]<sop>") { return "chatglm4" }
        if has("<|assistant|>") && has("<|user|>") {
            if has("<|tool_declare|>") { return "exaone-moe" }
            return has("</s>") ? "falcon3" : "glmedge"
        }
        if has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>") { return "glmedge" }
        if has("<|user|>") && has("<|endoftext|>") { return "zephyr" }
        if has("bos_token + message['role']") { return "monarch" }
        if has("<start_of_turn>") { return ChatTemplate.gemma.name }
        if has("'\\n\\nAssistant: ' + eos_token") { return "orion" }
        if has("GPT4 Correct ") { return "openchat" }
        if has("USER: ") && has("ASSISTANT: ") { return has("SYSTEM: ") ? "vicuna-orca" : "vicuna" }
        if has("### Instruction:") && has("<|EOT|>") { return "deepseek" }
        if has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>") { return "command-r" }
        if has("<|start_header_id|>") && has("<|end_header_id|>") { return ChatTemplate.llama3.name }
        return nil
    }

    /// The `[INST]` families: Mistral's official templates by their signs, otherwise Llama 2 and its variants.
    private static func instructFamily(of source: String) -> String {
        func has(_ marker: String) -> Bool { source.contains(marker) }
        if has("[SYSTEM_PROMPT]") { return ChatTemplate.mistralV7.name }
        // Mistral's official v1 (system message inside the first [INST]), v3 and v3-tekken (tool blocks).
        if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
            if has(" [INST]") { return ChatTemplate.mistralV1.name }
            if has("\"[INST]\"") { return ChatTemplate.mistralV3Tekken.name }
            return ChatTemplate.mistralV3.name
        }
        if has("content.strip()") { return ChatTemplate.llama2SystemStrip.name }
        if has("bos_token + '[INST]") { return ChatTemplate.llama2SystemBOS.name }
        if has("<<SYS>>") { return ChatTemplate.llama2System.name }
        return ChatTemplate.llama2.name
    }

    /// The family whose turn markers a vocabulary holds as tokens, for a GGUF without `tokenizer.chat_template`
    /// (the Gemma 3 270M file has none; llama.cpp would fall back to ChatML there, which the model was never
    /// trained on). Only unambiguous pairs count; nil otherwise.
    public static func inferred(fromVocabulary hasToken: (String) -> Bool) -> ChatTemplate? {
        let markers: [(ChatTemplate, [String])] = [
            (.gemma, ["<start_of_turn>", "<end_of_turn>"]),
            (.llama3, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
            (.chatML, ["<|im_start|>", "<|im_end|>"]),
            (.phi3, ["<|user|>", "<|assistant|>", "<|end|>"]),
        ]
        let matching = markers.filter { $0.1.allSatisfy(hasToken) }.map(\.0)
        return matching.count == 1 ? matching[0] : nil
    }
}
