import ArgumentParser
import Bench
import Foundation
import LLM

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Print the token ids of a text with the model's tokenizer.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Text to tokenize.") var text: String?
    @Option(name: .long, help: "File whose contents to tokenize.") var file: String?
    @Flag(name: .long, help: "Do not match control tokens such as <|im_start|> in the text.") var noParseSpecial = false
    @Flag(name: .long, help: "Print one JSON object {\"ids\": [...]}.") var json = false

    func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("give exactly one of --text or --file") }
    }

    func run() throws {
        let input: String
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            input = String(decoding: data, as: UTF8.self)
        } else {
            input = text!
        }
        let (_, tokenizer) = try modelOptions.openModelFile()
        let ids = tokenizer.encode(input, addSpecial: true, parseSpecial: !noParseSpecial)
        if json {
            try Console.printJSON(["ids": ids])
        } else {
            for id in ids { Console.write("\(id)\t\(tokenizer.tokenText(id).debugDescription)\n") }
            Console.status("\(ids.count) tokens")
        }
    }
}
