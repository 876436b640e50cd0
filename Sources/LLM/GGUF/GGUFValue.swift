/// A GGUF metadata value. Arrays of scalars are stored typed, so a 49,152-entry vocabulary is one
/// `[String]` rather than 49,152 boxed enum values.
public enum GGUFValue: Sendable, Equatable {
    case int(Int64)
    case uint(UInt64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case ints([Int64])
    case floats([Double])
    case bools([Bool])
    case strings([String])
    case arrays([GGUFValue])

    public var intValue: Int? {
        switch self {
        case .int(let v): return Int(exactly: v)
        case .uint(let v): return Int(exactly: v)
        case .bool(let v): return v ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float(let v): return v
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let v): return v
        case .int(let v): return v != 0
        case .uint(let v): return v != 0
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var stringsValue: [String]? {
        if case .strings(let s) = self { return s }
        return nil
    }

    public var intsValue: [Int]? {
        if case .ints(let v) = self { return v.map { Int($0) } }
        return nil
    }

    public var floatsValue: [Double]? {
        switch self {
        case .floats(let v): return v
        case .ints(let v): return v.map(Double.init)
        default: return nil
        }
    }
}
