import LLM

/// The default model's tokenizer. First byte: bit 0 add BOS/EOS, bit 1 parse special tokens, bit 2 decode
/// mode (the rest is little-endian 32-bit token ids, any value) instead of encode mode (the rest is text).
enum TokenizerFuzz {
    static func run(_ data: [UInt8]) {
        guard let tokenizer = try? FuzzModel.shared.tokenizer else { fatalError("no tokenizer: \(FuzzModel.path)") }
        var input = FuzzInput(data)
        let flags = input.byte()
        let addSpecial = flags & 1 != 0, parseSpecial = flags & 2 != 0
        if flags & 4 != 0 {
            var ids: [Int] = []
            while !input.isEmpty { ids.append(Int(Int32(bitPattern: input.u32()))) }
            let text = tokenizer.decode(ids, skipSpecial: flags & 8 != 0)
            let bytes = tokenizer.decodeBytes(ids, skipSpecial: flags & 8 != 0)
            var streaming = StreamingDecoder(tokenizer: tokenizer, skipSpecial: flags & 8 != 0)
            var streamed = ""
            for id in ids { streamed += streaming.append(id) }
            streamed += streaming.finish()
            fuzzCheck(!bytes.isEmpty || (text.isEmpty && streamed.isEmpty), "text from no bytes")
            return
        }
        let text = String(decoding: input.rest(), as: UTF8.self)
        let ids = tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial)
        fuzzCheck(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "token id out of the vocabulary")
        // Byte-level BPE keeps every byte the vocabulary has a token for: the decoded bytes are the text's less the
        // bytes without one (SmolLM2 has none for some control characters, e.g. 0x06, which llama.cpp drops
        // too), and printable ASCII comes back exactly.
        if !addSpecial && !parseSpecial {
            let back = tokenizer.decodeBytes(ids), original = Array(text.utf8)
            var k = 0
            for byte in back {
                while k < original.count && original[k] != byte { k += 1 }
                fuzzCheck(k < original.count, "round trip: \(original) came back as \(back) via \(ids): not a subsequence")
                k += 1
            }
            if original.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x0A || $0 == 0x09 }) {
                fuzzCheck(back == original, "round trip: \(original) came back as \(back) via \(ids)")
            }
        }
    }

    static func seeds() -> [[UInt8]] {
        let texts = ["Hello, world!", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n", "  spaces\tand\ttabs\n\n",
                     "naïve café 東京 \u{1F600} 123456789", "don't you'll I'm"]
        var seeds: [[UInt8]] = []
        for (i, text) in texts.enumerated() { seeds.append([UInt8(i % 4)] + Array(text.utf8)) }
        var ids: [UInt8] = [4]
        for id: UInt32 in [1, 2, 30, 49151, 49152, 0xFFFF_FFFF, 200, 17] { withUnsafeBytes(of: id.littleEndian) { ids += $0 } }
        seeds.append(ids)
        return seeds
    }
}
