import Foundation

/// Human-facing output: progress and status go to stderr so stdout stays clean for text or JSON.
package enum Console {
    package static func status(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Overwrites the current stderr line (for progress bars) when stderr is a terminal.
    package static func progress(_ message: String) {
        if isatty(2) != 0 {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + message).utf8))
        }
    }

    package static func endProgress() {
        if isatty(2) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    package static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Prints one JSON object on stdout (keys sorted so output is stable).
    package static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    package static func bar(_ done: Int, _ total: Int, width: Int = 30) -> String {
        let filled = total > 0 ? width * done / total : 0
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }
}

/// A progress line for long work: redrawn in place on a terminal; when stderr is a file or pipe
/// (CI logs), printed as plain lines at most every `interval` seconds so logs stay readable.
package final class ProgressReporter {
    private let interval: TimeInterval
    private var lastLine = Date.distantPast
    private let isTerminal = isatty(2) != 0
    private var drawn = false

    package init(interval: TimeInterval = 10) { self.interval = interval }

    /// A `milestone` (e.g. an epoch's validation loss) is always printed, however recent the last line.
    package func update(_ message: String, milestone: Bool = false) {
        if isTerminal {
            Console.progress(message)
            drawn = true
        } else if milestone || Date().timeIntervalSince(lastLine) >= interval {
            lastLine = Date()
            Console.status(message)
        }
    }

    /// Ends the progress line (if one is drawn), so the next status starts on its own line.
    package func finish() {
        if drawn { Console.endProgress() }
        drawn = false
    }
}

extension Console {
    /// Ends a progress line before a status line (no-op when stderr is not a terminal).
    package static func endProgressLine() {
        if isatty(2) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
