/// What an exit's confidence is the top probability over. Thresholds are picked for one rule, so a calibration
/// file records the rule its thresholds belong to.
public enum ExitRule: String, Sendable, Codable, CaseIterable {
    /// Over the whole vocabulary. The shortlist only screens: its bound rejects most unconfident tokens without
    /// the full head, and a token passes only when the full head confirms it.
    case full
    /// Over the shortlist alone, whose head rows are all an exit check reads: a decided token costs what a
    /// rejected one does, instead of the 49,152-row head. The edge only ever decides shortlisted tokens.
    case shortlist
}
