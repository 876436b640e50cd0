import Foundation

/// One benchmark prompt: an instruction (scored against the full model's answer) or a question
/// with short known answers (also scored for task accuracy).
package struct BenchPrompt: Codable, Sendable {
    package var id: String
    package var kind: String  // "instruction" | "qa"
    package var text: String
    /// Accepted answers for QA (any one, case-insensitive, as whole words); empty for instructions.
    package var answers: [String] = []

    /// The project's built-in set: every instruction prompt and QA question.
    package static var builtIn: [BenchPrompt] {
        InstructionSet.prompts.enumerated().map { BenchPrompt(id: String(format: "inst-%02d", $0 + 1), kind: "instruction", text: $1) }
            + QASet.questions.enumerated().map {
                BenchPrompt(id: String(format: "qa-%03d", $0 + 1), kind: "qa", text: $1.0 + qaSuffix, answers: $1.1)
            }
    }

    /// What the built-in QA prompts add to each question.
    package static let qaSuffix = " Answer in a few words."

    /// Reads a JSON array of prompts (the same fields as the built-in set).
    package static func load(_ path: String) throws -> [BenchPrompt] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read prompt file \(path)") }
        do {
            return try JSONDecoder().decode([BenchPrompt].self, from: data)
        } catch {
            throw BenchError("\(path) is not a JSON array of {id, kind, text, answers}: \(error)")
        }
    }

    /// Whether `response` contains one of the answers (normalised: lowercase, punctuation as spaces, whole words).
    package func isCorrect(_ response: String) -> Bool {
        let haystack = " " + Self.normalise(response) + " "
        return answers.contains { haystack.contains(" " + Self.normalise($0) + " ") }
    }

    package static func normalise(_ text: String) -> String {
        let mapped = text.lowercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : " " }
        return String(mapped).split(separator: " ").joined(separator: " ")
    }

    package init(id: String, kind: String, text: String, answers: [String] = []) {
        self.id = id
        self.kind = kind
        self.text = text
        self.answers = answers
    }
}
