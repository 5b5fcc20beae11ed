import Foundation
public import TeleportAPI

/// Decides whether an (already signature-verified) ``SSHCertificate`` grants access.
///
/// The checks are stricter than OpenSSH's defaults where those are dangerous: an empty principal
/// list is refused instead of meaning "any principal", a self-signed certificate is refused even
/// when its key is listed as a CA, and every critical option other than `force-command` and
/// `source-address` is refused. Time comes from the injected clock, with no skew allowance: the
/// signer is expected to back-date `validAfter` by a minute or so instead.
/// Every refusal is a ``TeleportError`` `accessDenied` with its own one-line message; text taken
/// from the certificate (key ID, option values) is quoted and escaped, so it cannot forge lines.
public struct SSHCertificateChecker: Sendable {
    /// The critical options this checker understands and enforces (or hands to the caller).
    public static let knownCriticalOptions: Set<String> = [
        SSHCertificate.forceCommandOption, SSHCertificate.sourceAddressOption,
    ]

    /// The source of the current time.
    public let clock: any WallClock

    /// Creates a checker reading time from `clock`.
    public init(clock: any WallClock) {
        self.clock = clock
    }

    /// Checks `cert` against the trusted CAs, its type, the login, its validity window, and its
    /// critical options.
    ///
    /// - Parameters:
    ///   - cert: The certificate; its CA signature was verified when it was parsed or signed.
    ///   - trustedCAs: The CA keys allowed to sign certificates of this type.
    ///   - expectedType: `.user` when authenticating a user, `.host` when authenticating a host.
    ///   - login: The principal that must be listed (the OS login, or the host name); nil skips
    ///     only this membership check, never the non-empty check.
    ///   - clientAddress: The peer's IP address (no port), needed when the certificate has a
    ///     `source-address` option; an IPv4-mapped IPv6 address is matched as IPv4.
    /// - Returns: What the certificate grants.
    /// - Throws: ``TeleportError`` `accessDenied` naming the first failed check.
    public func check(
        _ cert: SSHCertificate,
        trustedCAs: [SSHPublicKey],
        expectedType: SSHCertificate.CertType,
        login: String?,
        clientAddress: String?
    ) throws -> CheckedCertificate {
        let name = "certificate \(cert.keyID.debugDescription) (serial \(cert.serial))"
        if cert.signatureKey == cert.publicKey {
            throw TeleportError.accessDenied("\(name) is self-signed: it is signed by its own key, not by a CA")
        }
        guard trustedCAs.contains(cert.signatureKey) else {
            throw TeleportError.accessDenied(
                "\(name) is signed by \(cert.signatureKey.fingerprintSHA256), which is not a trusted \(expectedType) CA"
            )
        }
        guard cert.type == expectedType else {
            throw TeleportError.accessDenied(
                "\(name) is a \(cert.type) certificate where a \(expectedType) certificate is required")
        }
        guard !cert.validPrincipals.isEmpty else {
            throw TeleportError.accessDenied(
                "\(name) lists no principals; a certificate for any principal is not accepted")
        }
        if let login, !cert.validPrincipals.contains(login) {
            throw TeleportError.accessDenied("\(name) is not valid for principal \(login.debugDescription)")
        }

        let now = SSHCertificate.wireSeconds(from: clock.now())
        if now < cert.validAfterSeconds {
            throw TeleportError.accessDenied("\(name) is not valid yet (valid from \(cert.validAfter))")
        }
        if now >= cert.validBeforeSeconds {
            throw TeleportError.accessDenied("\(name) has expired (valid before \(cert.validBefore))")
        }

        for option in cert.criticalOptions.keys.sorted() where !Self.knownCriticalOptions.contains(option) {
            throw TeleportError.accessDenied("\(name) has unsupported critical option \(option.debugDescription)")
        }
        var sourceAddresses: [SSHCIDRBlock]?
        if let list = cert.criticalOptions[SSHCertificate.sourceAddressOption] {
            let blocks: [SSHCIDRBlock]
            do {
                blocks = try list.split(separator: ",", omittingEmptySubsequences: false).map {
                    try SSHCIDRBlock(String($0))
                }
            } catch {
                throw TeleportError.accessDenied(
                    "\(name) has a malformed source-address option \(list.debugDescription)")
            }
            guard let clientAddress else {
                throw TeleportError.accessDenied(
                    "\(name) is restricted by source-address but the client address is unknown")
            }
            guard blocks.contains(where: { $0.contains(clientAddress) }) else {
                let from = clientAddress.debugDescription
                throw TeleportError.accessDenied(
                    "\(name) does not allow connections from \(from) (source-address \(list.debugDescription))")
            }
            sourceAddresses = blocks
        }

        return CheckedCertificate(
            keyID: cert.keyID,
            serial: cert.serial,
            principals: cert.validPrincipals,
            extensions: cert.extensions,
            forceCommand: cert.criticalOptions[SSHCertificate.forceCommandOption],
            sourceAddresses: sourceAddresses,
            validBefore: cert.validBefore,
            signatureKey: cert.signatureKey
        )
    }
}
