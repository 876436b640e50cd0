import Foundation
import XCTest

@testable import LLM

final class ChatTemplateTests: XCTestCase {
    /// SmolLM2-135M-Instruct's `tokenizer.chat_template` (Jinja source as stored in the GGUF).
    static let smolLM2Template = #"""
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
        """#

    func testDefaultSystemMessageIsInserted() {
        let text = ChatTemplate.chatML.render([.user("What is the capital of France?")])
        XCTAssertEqual(
            text,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    }

    func testExplicitSystemMessageReplacesTheDefault() {
        let text = ChatTemplate.chatML.render([.system("Be brief."), .user("Hi")])
        XCTAssertEqual(text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertFalse(text.contains("SmolLM"))
    }

    func testMultiTurnWithoutGenerationPrompt() {
        let messages = [
            ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello! How can I help?"),
            ChatMessage(role: "user", content: "Tell me a joke."),
        ]
        let text = ChatTemplate.chatML.render(messages, addGenerationPrompt: false)
        XCTAssertEqual(
            text,
            "<|im_start|>system\n\(ChatTemplate.smolLM2DefaultSystemMessage)<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
                + "<|im_start|>user\nTell me a joke.<|im_end|>\n")
        XCTAssertFalse(text.hasSuffix("<|im_start|>assistant\n"))
    }

    func testOverridingOrSuppressingTheDefaultSystemMessage() {
        XCTAssertEqual(
            ChatTemplate.chatML.render([.user("Hi")], defaultSystemMessage: nil),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(
            ChatTemplate.chatML.render([.user("Hi")], defaultSystemMessage: "You are a helpful assistant."),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testEmptyConversationMatchesTheJinjaTemplate() {
        // The Jinja loop never runs, so no system message: only the generation prompt.
        XCTAssertEqual(ChatTemplate.chatML.render([]), "<|im_start|>assistant\n")
        XCTAssertEqual(ChatTemplate.chatML.render([], addGenerationPrompt: false), "")
    }

    func testDetectAndStopStrings() {
        XCTAssertEqual(ChatTemplate.detect(from: Self.smolLM2Template), .chatML)
        XCTAssertNil(ChatTemplate.detect(from: nil))
        XCTAssertNil(ChatTemplate.detect(from: "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"))
        XCTAssertEqual(ChatTemplate.chatML.stopStrings, ["<|im_end|>"])
        XCTAssertEqual(ChatTemplate.chatML.defaultSystemMessage, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    }

    func testDefaultSystemMessageFoundInTemplateSource() {
        XCTAssertEqual(
            ChatTemplate.defaultSystemMessage(inTemplate: Self.smolLM2Template),
            ChatTemplate.smolLM2DefaultSystemMessage)
        // The GGUF stores the template with real newlines inside the Jinja string literals.
        let withNewlines = Self.smolLM2Template.replacingOccurrences(of: "\\n", with: "\n")
        XCTAssertTrue(withNewlines.contains("<|im_start|>system\nYou are"))
        XCTAssertEqual(ChatTemplate.defaultSystemMessage(inTemplate: withNewlines), ChatTemplate.smolLM2DefaultSystemMessage)
        XCTAssertEqual(ChatTemplate.detect(from: withNewlines), .chatML)
        let noDefault = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
        XCTAssertNil(ChatTemplate.defaultSystemMessage(inTemplate: noDefault))
    }

    func testChatMessageCodable() throws {
        let m = ChatMessage(role: "user", content: "héllo \"quoted\"")
        let data = try JSONEncoder().encode(m)
        XCTAssertEqual(try JSONDecoder().decode(ChatMessage.self, from: data), m)
        let decoded = try JSONDecoder().decode([ChatMessage].self, from: Data(#"[{"role":"system","content":"x"}]"#.utf8))
        XCTAssertEqual(decoded, [.system("x")])
    }
}
