import XCTest

@testable import CollabCore
@testable import LLM

final class HiddenStateCodecTests: XCTestCase {
    private func randomStates(rows: Int, width: Int, seed: UInt64 = 1) -> HiddenStates {
        var rng = SplitMix64(seed: seed)
        return HiddenStates(values: (0..<rows * width).map { _ in Float.random(in: -4...4, using: &rng) }, width: width)
    }

    func testPayloadSizesFollowTheFormats() throws {
        // 576-wide rows (the default model): f32 4 B/value, f16 2 B/value, q8 34 B per 32 values.
        XCTAssertEqual(try HiddenStateCodec(format: .f32, width: 576).rowBytes, 2304)
        XCTAssertEqual(try HiddenStateCodec(format: .f16, width: 576).rowBytes, 1152)
        XCTAssertEqual(try HiddenStateCodec(format: .q8, width: 576).rowBytes, 612)
        XCTAssertThrowsError(try HiddenStateCodec(format: .q8, width: 100))
        XCTAssertThrowsError(try HiddenStateCodec(format: .f16, width: 0))
    }

    func testRoundTripsWithinEachFormatsPrecision() throws {
        let states = randomStates(rows: 5, width: 576)
        for (format, tolerance) in [(WireFormat.f32, 0.0), (.f16, 1e-3), (.q8, 1e-2)] {
            let codec = try HiddenStateCodec(format: format, width: 576)
            let bytes = try codec.encode(states)
            XCTAssertEqual(bytes.count, 5 * codec.rowBytes)
            let back = try codec.decode(bytes, rows: 5)
            XCTAssertEqual(back.rows, 5)
            let err = zip(back.values, states.values).map { Double(abs($0 - $1)) }.max()!
            XCTAssertLessThanOrEqual(err / 4, tolerance, "\(format)")
            if format == .f32 { XCTAssertEqual(back, states) }
        }
    }

    func testRejectsWrongSizes() throws {
        let codec = try HiddenStateCodec(format: .f16, width: 576)
        let bytes = try codec.encode(randomStates(rows: 2, width: 576))
        XCTAssertThrowsError(try codec.decode(Array(bytes.dropLast()), rows: 2)) {
            XCTAssertEqual($0 as? WireError, .sizeMismatch(expected: 2304, actual: 2303))
        }
        XCTAssertThrowsError(try codec.decode(bytes, rows: 3))
        XCTAssertThrowsError(try codec.decode(bytes, rows: -1))
        XCTAssertThrowsError(try codec.encode(randomStates(rows: 1, width: 64)))
        let small = try HiddenStateCodec(format: .f32, width: 32, maxRows: 4)
        XCTAssertThrowsError(try small.decode([UInt8](repeating: 0, count: 5 * 128), rows: 5)) {
            XCTAssertEqual($0 as? WireError, .tooManyRows(5, limit: 4))
        }
    }

    func testRejectsNonFiniteValuesBothWays() throws {
        var states = randomStates(rows: 3, width: 64)
        states.values[64 + 7] = .nan
        for format in WireFormat.allCases {
            let codec = try HiddenStateCodec(format: format, width: 64)
            XCTAssertThrowsError(try codec.encode(states)) {
                XCTAssertEqual($0 as? WireError, .nonFinite(row: 1, column: 7))
            }
        }
        // A peer's f32 payload carrying an infinity, and an f16 payload with a NaN bit pattern.
        let f32 = try HiddenStateCodec(format: .f32, width: 64)
        var bytes = try f32.encode(randomStates(rows: 1, width: 64))
        withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { bytes.replaceSubrange(8..<12, with: $0) }
        XCTAssertThrowsError(try f32.decode(bytes, rows: 1)) { XCTAssertEqual($0 as? WireError, .nonFinite(row: 0, column: 2)) }
        let f16 = try HiddenStateCodec(format: .f16, width: 64)
        var half = try f16.encode(randomStates(rows: 1, width: 64))
        half[0] = 0x01
        half[1] = 0x7E
        XCTAssertThrowsError(try f16.decode(half, rows: 1))
        // Values beyond f16's range cannot be sent as f16.
        let big = HiddenStates(values: [Float](repeating: 1e6, count: 64), width: 64)
        XCTAssertThrowsError(try f16.encode(big))
        XCTAssertNoThrow(try f32.encode(big))
    }
}
