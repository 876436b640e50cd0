import Foundation

/// Hyper-parameters of one exit block's training run. Defaults suit the 135M default model.
public struct TrainingOptions: Sendable, Equatable {
    public var batchSize = 64
    public var maxEpochs = 10
    public var learningRate: Float = 1e-3
    /// Decoupled weight decay on W1 and W2 (never on the norm weight or the adapter).
    public var weightDecay: Float = 0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var adamEpsilon: Float = 1e-8
    /// Stop after this many epochs without a better validation loss (needs a validation set).
    public var patience = 2
    /// Whether the adapter (A, b) of a block that has one trains too, or stays as given.
    public var trainAdapter = false
    /// Cosine decay of the learning rate to 10% over maxEpochs (else constant).
    public var cosineSchedule = false
    /// Seeds the per-epoch shuffles: the same seed, data and options give the same block.
    public var seed: UInt64 = 0
    public var loss = LossOptions()

    public init() {}

    /// The factor on `learningRate` during 1-based `epoch`: 1, or with the cosine schedule from 1 at the first
    /// epoch down to about 0.1 at the last.
    public func learningRateScale(epoch: Int) -> Float {
        guard cosineSchedule else { return 1 }
        return Float(0.55 + 0.45 * cos(Double.pi * Double(epoch - 1) / Double(max(1, maxEpochs))))
    }

    public init(maxEpochs: Int, batchSize: Int, learningRate: Float = 1e-3) {
        (self.maxEpochs, self.batchSize, self.learningRate) = (maxEpochs, batchSize, learningRate)
    }
}

/// Reported after every step and every validation, so a CLI can draw a progress bar.
public struct TrainingProgress: Sendable {
    public enum Event: Sendable { case step, validation }
    public var event: Event
    /// 1-based epoch in progress (0 for the validation of the initial block).
    public var epoch: Int
    public var maxEpochs: Int
    /// Steps done so far, over all epochs.
    public var step: Int
    public var stepsPerEpoch: Int
    public var maxSteps: Int { stepsPerEpoch * maxEpochs }
    /// Mean training loss of the current epoch so far.
    public var trainLoss: Double
    public var validationLoss: Double?
    public var bestValidationLoss: Double?
    public var elapsedSeconds: Double
    /// Time left if every epoch runs (early stopping may finish sooner).
    public var etaSeconds: Double
}

/// One epoch of a training run.
public struct EpochSummary: Sendable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var validation: Evaluation.Summary?
    public var seconds: Double
}

/// What a training run did.
public struct TrainingReport: Sendable {
    /// Validation of the initial block (the logit lens or the adapter), when a validation set was given.
    public var initialValidation: Evaluation.Summary?
    public var epochs: [EpochSummary]
    /// The epoch whose parameters were returned (0: the initial block was never beaten).
    public var bestEpoch: Int
    public var stoppedEarly: Bool
    public var steps: Int
    public var seconds: Double
    public var meanStepMilliseconds: Double { steps > 0 ? trainingSeconds * 1000 / Double(steps) : 0 }
    /// Seconds spent in training steps (without validation).
    public var trainingSeconds: Double
}

/// The best block of a run and its report.
public struct TrainingResult<Block: Sendable>: Sendable {
    public var block: Block
    public var report: TrainingReport

    public init(block: Block, report: TrainingReport) {
        self.block = block
        self.report = report
    }
}
