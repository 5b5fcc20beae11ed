public import Foundation

extension SSHCertificateChecker {
    /// What a certificate grants once ``SSHCertificateChecker/check(_:trustedCAs:expectedType:login:clientAddress:)``
    /// has accepted it. Enforcing ``forceCommand`` and the extensions is the caller's job.
    public struct CheckedCertificate: Sendable, Hashable {
        /// The certificate's key ID (the identity the CA logged).
        public let keyID: String
        /// The certificate's serial number.
        public let serial: UInt64
        /// The certificate's principals, never empty.
        public let principals: [String]
        /// The certificate's extensions (`permit-pty`, ...), for the caller to enforce.
        public let extensions: [String: String]
        /// The `force-command` critical option, if present: the only command the session may run.
        public let forceCommand: String?
        /// The parsed `source-address` blocks, if that option is present (already checked).
        public let sourceAddresses: [SSHCIDRBlock]?
        /// The end of the validity window; ``SSHCertificate/forever`` when it never expires.
        public let validBefore: Date
        /// The CA key that signed the certificate (one of the trusted CAs).
        public let signatureKey: SSHPublicKey
    }
}
