import Foundation

/// What every cloud client of the CLI reads from its environment.
enum CloudClientEnvironment {
    /// The bearer token edges present: $COLLM_TOKEN.
    static var token: String? { ProcessInfo.processInfo.environment["COLLM_TOKEN"] }

    /// Trust roots for TLS to the cloud: the option if given, else $COLLM_TLS_CA (unset or empty: plaintext).
    static func trustRoots(_ option: String?) -> String? {
        option ?? ProcessInfo.processInfo.environment["COLLM_TLS_CA"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
