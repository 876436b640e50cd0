/// The GPT-2 byte-level BPE alphabet: every byte 0...255 is represented by one printable Unicode
/// scalar. Printable Latin-1 bytes ('!'...'~', '¡'...'¬', '®'...'ÿ') stand for themselves; the
/// remaining 68 bytes (controls, space, DEL, NBSP, soft hyphen, ...) are numbered in byte order
/// starting at U+0100, so space (0x20) becomes 'Ġ' (U+0120) and newline becomes 'Ċ' (U+010A).
enum GPT2ByteMap {
    /// byte -> scalar value
    static let byteToScalar: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(UInt8(b)) {
                map[b] = UInt32(b)
            } else {
                map[b] = next
                next += 1
            }
        }
        return map
    }()

    /// scalar value (0..<324) -> byte, or -1 when the scalar is not part of the alphabet.
    static let scalarToByte: [Int16] = {
        var map = [Int16](repeating: -1, count: 324)
        for (b, s) in byteToScalar.enumerated() {
            map[Int(s)] = Int16(b)
        }
        return map
    }()

    @inline(__always)
    static func isPrintable(_ b: UInt8) -> Bool {
        (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)
    }

    /// Decodes a token's stored text (in the byte alphabet) to raw bytes appended to `out`; false
    /// (with `out` partly written) when the text holds a scalar outside the alphabet — such text
    /// cannot come out of byte-level pre-tokenization.
    static func decode(_ text: String, into out: inout [UInt8]) -> Bool {
        for scalar in text.unicodeScalars {
            let v = scalar.value
            guard v < 324, case let b = scalarToByte[Int(v)], b >= 0 else { return false }
            out.append(UInt8(b))
        }
        return true
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        return decode(text, into: &out) ? out : nil
    }

    /// Like `decode`, but scalars outside the alphabet are passed through as their UTF-8 bytes
    /// (what a detokenizer should print for such a token).
    static func decodeLenient(_ text: String, into out: inout [UInt8]) {
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 324, case let b = scalarToByte[Int(v)], b >= 0 {
                out.append(UInt8(b))
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
    }

    /// Encodes raw bytes into the byte alphabet.
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes {
            s.append(Unicode.Scalar(byteToScalar[Int(b)])!)
        }
        return String(s)
    }
}
