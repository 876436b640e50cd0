import Crypto

extension GGUFFile {
    /// Identity of the model's weights: SHA-256 over every tensor's name, type, shape and bytes
    /// (metadata such as the file's name or chat template does not change it). Edge and cloud compare
    /// it when a session opens, so a cloud never completes another model's hidden states.
    public func fingerprint() -> [UInt8] {
        var hasher = SHA256()
        for tensor in tensors.sorted(by: { $0.name < $1.name }) {
            hasher.update(data: Array("\(tensor.name):\(tensor.type.rawValue):\(tensor.shape)\n".utf8))
            hasher.update(bufferPointer: data(for: tensor))
        }
        return Array(hasher.finalize())
    }
}
