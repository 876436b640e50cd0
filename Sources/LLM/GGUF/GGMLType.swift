import CKernels

/// ggml tensor element types as stored in GGUF. Sizes are known for more formats than the kernels
/// implement, so that any file's layout can be validated; `isSupported` says what can be computed.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let bf16 = GGMLType(rawValue: 30)

    /// (elements per block, bytes per block, name)
    private static let layouts: [UInt32: (Int, Int, String)] = [
        0: (1, 4, "F32"), 1: (1, 2, "F16"), 2: (32, 18, "Q4_0"), 3: (32, 20, "Q4_1"),
        6: (32, 22, "Q5_0"), 7: (32, 24, "Q5_1"), 8: (32, 34, "Q8_0"), 9: (32, 36, "Q8_1"),
        10: (256, 84, "Q2_K"), 11: (256, 110, "Q3_K"), 12: (256, 144, "Q4_K"), 13: (256, 176, "Q5_K"),
        14: (256, 210, "Q6_K"), 15: (256, 292, "Q8_K"), 24: (1, 1, "I8"), 25: (1, 2, "I16"),
        26: (1, 4, "I32"), 27: (1, 8, "I64"), 28: (1, 8, "F64"), 30: (1, 2, "BF16"),
    ]

    /// The type named `name` as ggml spells it, in either case ("Q4_0", "q4_0").
    public init?(named name: String) {
        guard let raw = Self.layouts.first(where: { $0.value.2.lowercased() == name.lowercased() })?.key else { return nil }
        self.init(rawValue: raw)
    }

    /// The name in lower case ("q4_0"), as command-line options and JSON spell it.
    public var lowercasedName: String { description.lowercased() }

    public var isKnown: Bool { Self.layouts[rawValue] != nil }
    /// The kernels implement it (dequantization and products); they are the one list of what is.
    public var isSupported: Bool { isKnown && ck_type_supported(Int32(rawValue)) != 0 }
    public var blockElements: Int { Self.layouts[rawValue]?.0 ?? 0 }
    public var blockBytes: Int { Self.layouts[rawValue]?.1 ?? 0 }
    public var description: String { Self.layouts[rawValue]?.2 ?? "type#\(rawValue)" }

    /// Bytes needed for `elements` values, or nil when the count does not fill whole blocks.
    public func byteCount(elements: Int) -> Int? {
        guard isKnown, elements >= 0, elements % blockElements == 0 else { return nil }
        let (blocks, overflow) = (elements / blockElements).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : blocks
    }
}
