/// Errors of exit-block training, worded for the person running `collm calibrate`.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(String)
    case emptyTrainingSet
    case missingTensor(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "exit training: shape mismatch: \(s)"
        case .emptyTrainingSet: return "exit training: the training set has no rows"
        case .missingTensor(let name): return "exit training: the model has no tensor \(name)"
        }
    }
}
