import CollabCore

/// Opens and closes one session, so that a server learns at start-up whether its cloud accepts it
/// rather than at its first request: a refusal (token, TLS, model or split) is thrown as
/// `CloudRefusal`; an unreachable cloud is only reported to `options.outageMonitor` (requests
/// degrade until it answers).
public enum CloudPreflight {
    public static func check(connector: CloudConnector, fingerprint: [UInt8], splitLayer: Int, options: EdgeOptions) async throws {
        let client = CloudSessionClient(connector: connector, fingerprint: fingerprint, splitLayer: splitLayer, options: options)
        try await client.start(capacity: 1, log: UploadLog())
        await client.close()
    }
}
