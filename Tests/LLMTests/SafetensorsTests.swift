import Foundation
import XCTest

@testable import LLM

final class SafetensorsTests: XCTestCase {
    private func sample() -> SafetensorsFile {
        var file = SafetensorsFile()
        file.metadata = ["kind": "test", "note": "ünïcode"]
        file.tensors["a.matrix"] = .init(floats: [1, -2.5, 3, .pi, 0, 6], shape: [2, 3])
        file.tensors["ids"] = .init(ints: [7, -1, 49151], shape: [3])
        return file
    }

    func testRoundTripKeepsTensorsAndMetadata() throws {
        let data = try sample().serialized()
        // Layout: 8-byte little-endian header length, header padded to 8 bytes, then 24 + 12 data bytes.
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(data.count, 8 + headerLength + 36)
        let back = try SafetensorsFile(data: data)
        XCTAssertEqual(back.metadata, sample().metadata)
        XCTAssertEqual(back.tensors, sample().tensors)
        XCTAssertEqual(back.tensors["a.matrix"]?.floats, [1, -2.5, 3, .pi, 0, 6])
        XCTAssertEqual(back.tensors["ids"]?.ints, [7, -1, 49151])
        XCTAssertNil(back.tensors["ids"]?.floats, "an I32 tensor is not read as floats")
    }

    func testWriteIsReadableFromDisk() throws {
        let path = NSTemporaryDirectory() + "collm-st-\(UInt32.random(in: 0...UInt32.max))/x.safetensors"
        try sample().write(to: path)
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        XCTAssertEqual(try SafetensorsFile(path: path).tensors, sample().tensors)
    }

    /// A file past 2 GiB (calibration datasets are ~2.5 GB) keeps its last bytes: on Linux, one
    /// `Data.write` call silently dropped everything after 2 GiB.
    func testWritePastTwoGiBKeepsEveryByte() throws {
        let path = NSTemporaryDirectory() + "collm-st-big-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let count = (1 << 31) + 4096
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt32.self)
            for i in stride(from: 0, to: words.count, by: 1024) { words[i] = UInt32(truncatingIfNeeded: i &* 2_654_435_761) }
        }
        var file = SafetensorsFile()
        file.tensors["big"] = .init(dtype: .i8, shape: [2, count / 2], data: data)
        file.tensors["tail"] = .init(ints: [7, -1, 49151], shape: [3])
        try file.write(to: path)
        data = Data()
        let back = try SafetensorsFile(path: path)
        XCTAssertEqual(back.tensors["tail"]?.ints, [7, -1, 49151])
        XCTAssertEqual(back.tensors["big"], file.tensors["big"])
    }

    func testRejectsCorruptFiles() throws {
        let good = try sample().serialized()
        func rejects(_ data: Data, _ why: String) {
            XCTAssertThrowsError(try SafetensorsFile(data: data), why) { XCTAssertTrue($0 is SafetensorsError, why) }
        }
        rejects(Data(), "empty")
        rejects(good.prefix(7), "short length")
        rejects(good.prefix(good.count - 1), "truncated data")
        var huge = good
        huge.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        rejects(huge, "header length beyond the file")
        var garbled = good
        garbled[9] = 0x00
        rejects(garbled, "header not JSON")
        // A shape that disagrees with its offsets.
        let bad = #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        var data = Data()
        var length = UInt64(bad.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(Data(bad.utf8))
        data.append(Data(count: 8))
        rejects(data, "shape/offset mismatch")
        for i in stride(from: 0, to: good.count, by: 3) { _ = try? SafetensorsFile(data: good.prefix(i)) }  // never crashes
    }
}
