import CKernels

/// Loads named tensors from a GGUF file with shape checks, and records every tensor it touched,
/// so a layer-range instance can show it loaded only its own weights.
final class TensorLoader {
    let file: GGUFFile
    let activations: ActivationPrecision
    private(set) var loaded: Set<String> = []

    init(file: GGUFFile, activations: ActivationPrecision = .int8) {
        self.file = file
        self.activations = activations
    }

    func markLoaded(_ name: String) { loaded.insert(name) }

    func has(_ name: String) -> Bool { file.tensor(named: name) != nil }

    func info(_ name: String, shape: [Int]? = nil) throws -> GGUFTensorInfo {
        guard let t = file.tensor(named: name) else {
            throw GGUFError(path: file.path, reason: "missing tensor \(name)")
        }
        if let shape, t.shape != shape {
            throw GGUFError(path: file.path, reason: "tensor \(name) has shape \(t.shape), expected \(shape)")
        }
        return t
    }

    func matrix(_ tensors: [GGUFTensorInfo]) throws -> WeightMatrix {
        tensors.forEach { loaded.insert($0.name) }
        return try WeightMatrix(file: file, tensors: tensors, activations: activations)
    }

    /// A 1-D tensor as f32 (norm weights and biases are small; any float format is accepted).
    func vector(_ name: String, count: Int) throws -> [Float] {
        let t = try info(name)
        guard t.elementCount == count else {
            throw GGUFError(path: file.path, reason: "tensor \(name) has \(t.elementCount) values, expected \(count)")
        }
        guard t.type.isSupported else {
            throw GGUFError(path: file.path, reason: "tensor \(name) has unsupported type \(t.type)")
        }
        loaded.insert(name)
        let data = file.data(for: t)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            ck_dequantize_row_ref(ck_type(rawValue: t.type.rawValue), data.baseAddress!, buffer.baseAddress!, Int64(count))
            initialized = count
        }
    }
}
