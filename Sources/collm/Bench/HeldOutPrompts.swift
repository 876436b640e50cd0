import Bench
import Calibration

extension BenchPrompt {
    /// `prompts` without those the exit calibration also uses (the same question or instruction): the exits were
    /// fitted, or their thresholds picked, on a share of those.
    static func leavingOutCalibration(_ prompts: [BenchPrompt]) -> [BenchPrompt] {
        let calibration = Set((CalibrationPromptSet.instructions + CalibrationPromptSet.questions).map(normalise))
        return prompts.filter { !calibration.contains(normalise($0.text.replacingOccurrences(of: qaSuffix, with: ""))) }
    }
}
