import ArgumentParser
import Foundation

/// Parses "0.7,0.95"-style pairs and comma-separated layer lists.
enum ListArgument {
    static func layers(_ text: String, option: String) throws -> [Int] {
        try text.split(separator: ",").map {
            guard let layer = Int($0.trimmingCharacters(in: .whitespaces)), layer > 0 else {
                throw ValidationError("\(option) takes comma-separated layer numbers (got \(text))")
            }
            return layer
        }
    }

    static func bounds(_ text: String, option: String) throws -> (Float, Float) {
        let parts = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, parts[0] >= 0, parts[0] <= parts[1] else {
            throw ValidationError("\(option) takes MIN,MAX with 0 <= MIN <= MAX (got \(text))")
        }
        return (parts[0], parts[1])
    }
}
