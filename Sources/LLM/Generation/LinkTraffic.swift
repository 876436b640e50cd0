/// Bytes and round trips a generation cost on the link to the cloud, including framing.
public struct LinkTraffic: Sendable, Equatable {
    public var bytesUp = 0
    public var bytesDown = 0
    public var roundTrips = 0
    public var networkSeconds = 0.0

    public init() {}

    public static func += (total: inout LinkTraffic, more: LinkTraffic) {
        total.bytesUp += more.bytesUp
        total.bytesDown += more.bytesDown
        total.roundTrips += more.roundTrips
        total.networkSeconds += more.networkSeconds
    }
}
