import CKernels
import Foundation

/// Adam with decoupled weight decay (Loshchilov & Hutter) over a flat parameter vector, with one
/// weight decay per parameter range (decay pulls weights toward zero, right for W1/W2 but wrong for
/// a norm weight near 1 or an adapter near identity, so those get none) and ranges that stay frozen.
struct AdamW {
    struct Group {
        let range: Range<Int>
        let decay: Float
    }

    let learningRate: Float
    let beta1: Float
    let beta2: Float
    let epsilon: Float
    let groups: [Group]
    private(set) var step = 0
    private var m: [Float]
    private var v: [Float]

    init(parameterCount: Int, groups: [Group], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
         epsilon: Float = 1e-8) {
        self.groups = groups
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        m = [Float](repeating: 0, count: parameterCount)
        v = [Float](repeating: 0, count: parameterCount)
    }

    /// One update of `parameters` from `gradient` (same layout); ranges outside every group are untouched.
    /// `scale` multiplies the learning rate (for schedules).
    mutating func update(_ parameters: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, scale: Float = 1) {
        step += 1
        let c1 = 1 - Float(pow(Double(beta1), Double(step)))
        let c2 = 1 - Float(pow(Double(beta2), Double(step)))
        let lr = learningRate * scale
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        m.withUnsafeMutableBufferPointer { mm in
            v.withUnsafeMutableBufferPointer { vv in
                for group in groups where !group.range.isEmpty {
                    let o = group.range.lowerBound
                    ck_train_adamw(parameters + o, gradient + o, mm.baseAddress! + o, vv.baseAddress! + o,
                                   Int64(group.range.count), lr, b1, b2, eps, group.decay, c1, c2)
                }
            }
        }
    }
}
