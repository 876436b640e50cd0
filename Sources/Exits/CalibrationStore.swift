import Foundation
import LLM

/// Where calibration files live by default: `<cache>/calibration/<fingerprint prefix>-s<split>.safetensors`,
/// so `generate`, `serve` and `bench` find what `collm calibrate` wrote for the same model and split.
public enum CalibrationStore {
    public static func defaultPath(fingerprint: [UInt8], split: Int) -> String {
        let dir = (ModelStore.defaultCacheDirectory() as NSString).appendingPathComponent("calibration")
        return (dir as NSString).appendingPathComponent("\(ExitCalibration.hex(fingerprint).prefix(16))-s\(split).safetensors")
    }

    /// The cached full-model data of one prompt selection (`key` names it, e.g. "p220-t48").
    public static func datasetPath(fingerprint: [UInt8], key: String) -> String {
        let dir = (ModelStore.defaultCacheDirectory() as NSString).appendingPathComponent("calibration")
        return (dir as NSString).appendingPathComponent("\(ExitCalibration.hex(fingerprint).prefix(16))-data-\(key).safetensors")
    }

    /// The calibration shipped with collm for the default model (`Sources/Exits/Resources/calibration/`,
    /// reproduced by the seeded command in the README), if there is one for this model and split.
    public static func shippedPath(fingerprint: [UInt8], split: Int) -> String? {
        Bundle.module.url(forResource: "\(ExitCalibration.hex(fingerprint).prefix(16))-s\(split)", withExtension: "safetensors",
                          subdirectory: "calibration")?.path
    }

    /// The calibration to use: an explicit file (which must match the model and split), "none",
    /// the cache's file if it exists, else the shipped one.
    public static func load(_ option: String?, fingerprint: [UInt8], split: Int) throws -> (ExitCalibration, String)? {
        if option == "none" { return nil }
        var path = option ?? defaultPath(fingerprint: fingerprint, split: split)
        if option == nil, !FileManager.default.fileExists(atPath: path),
           let shipped = shippedPath(fingerprint: fingerprint, split: split) {
            path = shipped
        }
        guard FileManager.default.fileExists(atPath: path) else {
            if option != nil { throw CalibrationStoreError("calibration file not found: \(path)") }
            return nil
        }
        let calibration = try ExitCalibration(path: path)
        try calibration.check(fingerprint: fingerprint)
        guard calibration.split == split else {
            throw CalibrationStoreError("\(path) was calibrated for split \(calibration.split), not \(split) (pass --split \(calibration.split))")
        }
        return (calibration, path)
    }
}

/// A calibration the options name that cannot be used: a missing file, or one made for another split.
public struct CalibrationStoreError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
