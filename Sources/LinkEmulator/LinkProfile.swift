import Foundation

/// What the emulated edge-cloud link does to bytes: one-way delay, a rate cap and jitter, applied
/// independently in each direction (so the round-trip time is twice `oneWayDelay`).
public struct LinkProfile: Sendable, Equatable, CustomStringConvertible {
    /// Seconds every byte spends in flight after it has been serialised onto the link.
    public var oneWayDelay: Double
    /// Bits per second per direction; nil means unlimited (delay only).
    public var rateBitsPerSecond: Double?
    /// Each chunk's delay varies uniformly within +-jitter seconds (never below zero, never reordering bytes).
    public var jitter: Double

    public init(oneWayDelay: Double = 0, rateBitsPerSecond: Double? = nil, jitter: Double = 0) {
        self.oneWayDelay = oneWayDelay
        self.rateBitsPerSecond = rateBitsPerSecond
        self.jitter = jitter
    }

    /// The command-line units: milliseconds and Mbit/s (rate 0 = unlimited).
    public init(delayMs: Double, rateMbit: Double, jitterMs: Double = 0) {
        self.init(oneWayDelay: delayMs / 1000, rateBitsPerSecond: rateMbit > 0 ? rateMbit * 1_000_000 : nil,
                  jitter: jitterMs / 1000)
    }

    /// A link described by its round-trip time, as the benchmarks specify it.
    public init(rttMs: Double, rateMbit: Double, jitterMs: Double = 0) {
        self.init(delayMs: rttMs / 2, rateMbit: rateMbit, jitterMs: jitterMs)
    }

    /// Throws when a value cannot describe a link (negative, infinite or NaN).
    public func validate() throws {
        guard oneWayDelay.isFinite, oneWayDelay >= 0 else { throw LinkEmulatorError("delay must be a finite number >= 0") }
        guard jitter.isFinite, jitter >= 0 else { throw LinkEmulatorError("jitter must be a finite number >= 0") }
        if let rate = rateBitsPerSecond, !(rate.isFinite && rate > 0) {
            throw LinkEmulatorError("rate must be a finite number > 0 (or unlimited)")
        }
    }

    public var description: String {
        let rate = rateBitsPerSecond.map { "\(($0 / 1e6).formatted3) Mbit/s" } ?? "unlimited rate"
        var text = "one-way delay \((oneWayDelay * 1000).formatted3) ms, \(rate)"
        if jitter > 0 { text += ", jitter +-\((jitter * 1000).formatted3) ms" }
        return text
    }
}

public struct LinkEmulatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Double {
    /// Up to three decimals, without trailing zeros ("20", "0.5", "12.345").
    var formatted3: String {
        var s = String(format: "%.3f", self)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
