/// Per-code-point character classes used by the pre-tokenizers.
///
/// The classes follow the regular-expression categories used by the BPE split patterns:
/// `\p{L}` (any letter category), `\p{N}` (any number category), `\p{P}` (any punctuation
/// category) and `\s` (the Unicode `White_Space` property, which is also what llama.cpp uses).
/// Look-ups for the Basic Multilingual Plane come from a table built once on first use; other
/// planes ask the standard library's Unicode data directly.
enum UnicodeClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let punctuation: UInt8 = 8

    /// Letter, number or whitespace: the classes excluded by `[^\s\p{L}\p{N}]`.
    static let wordOrSpace: UInt8 = letter | number | whitespace

    /// Flags for U+0000..U+FFFF (surrogate code points get 0; they never occur in a String).
    static let bmpTable: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for cp in 0..<0x10000 {
            if let scalar = Unicode.Scalar(UInt32(cp)) {
                table[cp] = computeFlags(scalar)
            }
        }
        return table
    }()

    @inline(__always)
    static func flags(_ cp: UInt32) -> UInt8 {
        if cp < 0x10000 { return bmpTable[Int(cp)] }
        guard let scalar = Unicode.Scalar(cp) else { return 0 }
        return computeFlags(scalar)
    }

    static func computeFlags(_ scalar: Unicode.Scalar) -> UInt8 {
        let props = scalar.properties
        var f: UInt8 = props.isWhitespace ? whitespace : 0
        switch props.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            f |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            f |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            f |= punctuation
        default:
            break
        }
        return f
    }

    /// ASCII-only lower-casing, enough for the `(?i:'s|'t|...)` contractions.
    @inline(__always)
    static func asciiLower(_ cp: UInt32) -> UInt32 {
        (cp >= 0x41 && cp <= 0x5A) ? cp + 0x20 : cp
    }
}
