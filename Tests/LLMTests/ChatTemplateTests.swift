import Foundation
import XCTest
import TestSupport

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
        // llama.cpp takes any [INST] template without Mistral's own signs for Llama 2's.
        XCTAssertEqual(ChatTemplate.detect(from: "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"), .llama2)
        XCTAssertNil(ChatTemplate.detect(from: "{{ messages[0]['content'] }}"))
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

    // MARK: - llama.cpp's references (tests/test-chat-template.cpp)

    func testEveryFamilyRendersLlamaCppExpectedString() throws {
        var rendered = Set<ChatTemplate>()
        for reference in LlamaCppChatTemplateCases.cases {
            guard let template = ChatTemplate(name: reference.family) else { continue }
            let text = template.render(LlamaCppChatTemplateCases.conversation, defaultSystemMessage: nil)
            XCTAssertEqual(text, reference.expected, reference.name)
            rendered.insert(template)
        }
        // Every family the test file has a case for (it has none for llama2-sys and mistral-v7-tekken).
        XCTAssertEqual(
            rendered,
            [.chatML, .llama2, .llama2SystemBOS, .llama2SystemStrip, .gemma, .llama3, .phi3,
             .mistralV1, .mistralV3, .mistralV3Tekken, .mistralV7])
    }

    func testDetectionFromTheTestFileTemplateSources() {
        for reference in LlamaCppChatTemplateCases.cases {
            XCTAssertEqual(ChatTemplate.llamaCppFamilyName(of: reference.templateSource), reference.family, reference.name)
            XCTAssertEqual(ChatTemplate.detect(from: reference.templateSource), ChatTemplate(name: reference.family), reference.name)
        }
        // Phi-4 and AlphaMonarch share ChatML's and other families' markers but are neither.
        let phi4 = LlamaCppChatTemplateCases.cases.first { $0.name == "phi-4" }!
        XCTAssertNil(ChatTemplate.detect(from: phi4.templateSource))
    }

    func testDetectedTemplateRendersTheModelsExpectedString() throws {
        for reference in LlamaCppChatTemplateCases.cases {
            guard let template = ChatTemplate.detect(from: reference.templateSource) else { continue }
            let format = try ChatFormat.choose(name: nil, templateSource: reference.templateSource) { _ in false }
            XCTAssertEqual(format.template, template, reference.name)
            XCTAssertEqual(format.render(LlamaCppChatTemplateCases.conversation), reference.expected, reference.name)
        }
    }

    func testTemplateNamesAreLlamaCppNames() {
        XCTAssertEqual(
            ChatTemplate.names,
            ["chatml", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "mistral-v1", "mistral-v3",
             "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "phi3", "gemma", "llama3"])
        for name in ChatTemplate.names {
            XCTAssertEqual(ChatTemplate.llamaCppFamilyName(of: name), name, "llama.cpp accepts a template's name as its source")
        }
    }

    func testStopStringsEndTheAssistantTurnsOfTheReferences() {
        // In each expected string, the assistant's "Hi there" ends with the family's stop string.
        for reference in LlamaCppChatTemplateCases.cases {
            guard let template = ChatTemplate(name: reference.family) else { continue }
            XCTAssertEqual(template.stopStrings.count, 1, reference.name)
            XCTAssertTrue(reference.expected.contains("Hi there" + template.stopStrings[0]),
                          "\(reference.name): \(template.stopStrings)")
        }
        XCTAssertEqual(ChatTemplate.gemma.stopStrings, ["<end_of_turn>"])
        XCTAssertEqual(ChatTemplate.llama3.stopStrings, ["<|eot_id|>"])
    }

    // MARK: - Choosing a model's template

    func testOptionOverridesDetection() throws {
        let format = try ChatFormat.choose(name: "gemma", templateSource: Self.smolLM2Template) { _ in true }
        XCTAssertEqual(format.template, .gemma)
        XCTAssertEqual(format.origin, .option)
        XCTAssertNil(format.defaultSystemMessage)
        let chatML = try ChatFormat.choose(name: "chatml", templateSource: Self.smolLM2Template) { _ in false }
        XCTAssertEqual(chatML.defaultSystemMessage, ChatTemplate.smolLM2DefaultSystemMessage)
    }

    func testUnknownTemplatesGiveErrorsNamingTheOption() {
        let phi4 = LlamaCppChatTemplateCases.cases.first { $0.name == "phi-4" }!.templateSource
        let failures: [(String?, String?, ChatTemplateError)] = [
            ("gemma2", nil, .unknownName("gemma2")),
            (nil, phi4, .unsupportedFamily("phi4")),
            (nil, "{{ messages[0]['content'] }}", .unrecognized(excerpt: "{{ messages[0]['content'] }}")),
            (nil, nil, .missing),
            (nil, "", .missing),
        ]
        for (name, source, expected) in failures {
            XCTAssertThrowsError(try ChatFormat.choose(name: name, templateSource: source) { _ in false }) { error in
                XCTAssertEqual(error as? ChatTemplateError, expected)
                let message = "\(error)"
                XCTAssertTrue(message.contains("--template NAME"), message)
                for name in ChatTemplate.names { XCTAssertTrue(message.contains(name), message) }
            }
        }
    }

    func testSmolLM2IsDetectedFromItsTemplate() throws {
        let gguf = try GGUFFile(path: try TestResources.modelPath())
        let format = try ChatFormat.choose(name: nil, gguf: gguf, tokenizer: try Tokenizer(gguf: gguf))
        XCTAssertEqual(format.template, .chatML)
        XCTAssertEqual(format.origin, .modelTemplate)
        XCTAssertEqual(format.defaultSystemMessage, ChatTemplate.smolLM2DefaultSystemMessage)
        XCTAssertEqual(format.render(user: "Hi"), ChatTemplate.chatML.render([.user("Hi")]))
    }

    func testGemmaIsDetectedFromItsTurnTokensAndStopsAtEndOfTurn() throws {
        let gguf = try GGUFFile(path: try TestResources.gemmaModelPath())
        let tokenizer = try Tokenizer(gguf: gguf)
        // The file has no tokenizer.chat_template: its vocabulary's turn tokens name the family.
        XCTAssertNil(gguf.string("tokenizer.chat_template"))
        let format = try ChatFormat.choose(name: nil, gguf: gguf, tokenizer: tokenizer)
        XCTAssertEqual(format.template, .gemma)
        XCTAssertEqual(format.origin, .vocabulary)
        XCTAssertEqual(
            format.render(user: "What is the capital of France?"),
            "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n")
        for text in ChatTemplate.gemma.stopStrings {
            let id = try XCTUnwrap(tokenizer.tokenId(for: text), text)
            XCTAssertTrue(tokenizer.isEndOfGeneration(id), text)
        }
    }

    func testChatMessageCodable() throws {
        let m = ChatMessage(role: "user", content: "héllo \"quoted\"")
        let data = try JSONEncoder().encode(m)
        XCTAssertEqual(try JSONDecoder().decode(ChatMessage.self, from: data), m)
        let decoded = try JSONDecoder().decode([ChatMessage].self, from: Data(#"[{"role":"system","content":"x"}]"#.utf8))
        XCTAssertEqual(decoded, [.system("x")])
    }
}
