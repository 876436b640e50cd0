/// The timing model of one direction of the link, free of any I/O so it can be tested exactly.
///
/// A chunk read at time `now` waits until the link is free, occupies it for its serialisation time
/// (bytes * 8 / rate) and arrives `oneWayDelay` (+- jitter) after its last bit left. Arrival times
/// never decrease: a chunk delayed by jitter holds back the ones behind it, as TCP's in-order
/// delivery does, so bytes are never reordered.
public struct LinkShaper {
    public var profile: LinkProfile
    /// When the link finishes serialising what it has accepted so far (nanoseconds).
    private(set) var busyUntil: Int64 = 0
    /// The latest arrival time handed out (nanoseconds).
    private(set) var lastArrival: Int64 = 0
    private var random: any RandomNumberGenerator

    public init(profile: LinkProfile, random: any RandomNumberGenerator = SystemRandomNumberGenerator()) {
        self.profile = profile
        self.random = random
    }

    /// Arrival time (nanoseconds, same clock as `now`) of a chunk of `bytes` read at `now`.
    public mutating func arrival(ofBytes bytes: Int, readAt now: Int64) -> Int64 {
        let start = max(now, busyUntil)
        var sent = start
        if let rate = profile.rateBitsPerSecond {
            sent += Int64((Double(bytes) * 8 / rate * 1e9).rounded())
        }
        busyUntil = sent
        var delay = profile.oneWayDelay
        if profile.jitter > 0 {
            delay += Double.random(in: -profile.jitter...profile.jitter, using: &random)
        }
        let arrival = max(sent + Int64((max(0, delay) * 1e9).rounded()), lastArrival)
        lastArrival = arrival
        return arrival
    }
}
