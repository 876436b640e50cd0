import Foundation

/// Runs `collm` itself as child processes (edge runs, the cloud server), optionally pinned to one
/// CPU with taskset so edge and cloud do not share a core, as two machines would not.
package struct ChildLauncher: Sendable {
    /// The collm binary to run (this executable by default).
    package var executable: String
    /// Whether `taskset` is usable here (present, and more than one CPU to pin to).
    package var canPin: Bool

    package init(executable: String? = nil) {
        self.executable = executable ?? Self.currentExecutable()
        canPin = FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset")
            && ProcessInfo.processInfo.activeProcessorCount >= 2
    }

    package static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    package func makeProcess(_ arguments: [String], cpu: Int?) -> Process {
        let process = Process()
        if let cpu, canPin {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            process.arguments = ["-c", "\(cpu)", executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        return process
    }

    /// Runs to completion (killed after `timeout` seconds); returns exit status, stdout and stderr.
    package func run(_ arguments: [String], cpu: Int?, timeout: Double) throws -> (status: Int32, out: String, err: String) {
        let process = makeProcess(arguments, cpu: cpu)
        let out = try TempFile(prefix: "collm-bench-out")
        let err = try TempFile(prefix: "collm-bench-err")
        process.standardOutput = try out.writer()
        process.standardError = try err.writer()
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw BenchError("collm \(arguments.prefix(4).joined(separator: " ")) ... timed out after \(Int(timeout)) s")
        }
        process.waitUntilExit()
        return (process.terminationStatus, out.contents, err.contents)
    }
}

/// A temporary file removed when released (child output goes to files: a full pipe would block it).
package final class TempFile {
    package let url: URL

    package init(prefix: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw BenchError("cannot create \(url.path)")
        }
    }

    package func writer() throws -> FileHandle { try FileHandle(forWritingTo: url) }
    package var contents: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A `collm cloud` child on a free loopback port, stopped (SIGINT) when `stop()` is called.
package final class CloudChild {
    package let process: Process
    package let port: Int
    private let log: TempFile

    package init(launcher: ChildLauncher, arguments: [String], cpu: Int?) throws {
        log = try TempFile(prefix: "collm-bench-cloud")
        process = launcher.makeProcess(["cloud", "--host", "127.0.0.1", "--port", "0"] + arguments, cpu: cpu)
        process.standardError = try log.writer()
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        var found: Int?
        while found == nil && process.isRunning && Date() < deadline {
            if let range = log.contents.range(of: #"listening on 127\.0\.0\.1:\d+"#, options: .regularExpression) {
                found = Int(log.contents[range].split(separator: ":").last!)
            } else {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        guard let found else {
            if process.isRunning { process.terminate() }
            throw BenchError("the cloud server did not start: \(log.contents)")
        }
        port = found
    }

    package var address: String { "127.0.0.1:\(port)" }

    /// Resident and peak resident memory of the cloud process (MiB), from /proc.
    package var memoryMiB: (rss: Double, peak: Double) {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else {
            return (0, 0)
        }
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
                  let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
            return kib / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    package func stop() {
        guard process.isRunning else { return }
        process.interrupt()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
        let killAt = Date().addingTimeInterval(5)
        while process.isRunning && Date() < killAt { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }  // never hang the benchmark on a stuck child
        process.waitUntilExit()
    }

    deinit { stop() }
}
