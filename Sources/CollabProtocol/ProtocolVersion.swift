// Hand-written companion to the generated code in Generated/ (see Protos/collm/v1/collab.proto and
// scripts/generate-protos.sh). Nothing here is generated.

/// Version constants of the edge <-> cloud protocol (docs/ARCHITECTURE.md section 3).
public enum CollabProtocolVersion {
    /// Sent by the edge in `Open.protocol_version` and echoed by the cloud in `Opened.protocol_version`.
    /// Bump when a change is not backward compatible (field meaning changes, not additions).
    public static let current: UInt32 = 1

    /// The proto package and service, for logs and diagnostics.
    public static let serviceName = "collm.v1.Collab"
}
