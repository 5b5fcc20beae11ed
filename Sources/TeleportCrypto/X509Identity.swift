public import TeleportAPI
public import X509
import SwiftASN1

/// Who a TLS client certificate speaks for: encoded in the certificate's subject, read back by the
/// auth API. The issuing CA (user or host) says whether it is a person or a cluster member.
///
/// Subject layout: `CN` = user name (or `<host UUID>.<cluster>` for hosts), one `O` per role (a
/// ``SystemRole`` for hosts), and private attributes for logins (`1.3.9999.1.1`) and the cluster
/// name (`1.3.9999.1.2`).
public struct X509Identity: Sendable, Equatable {
    /// The user name or host id.
    public var username: String
    /// Role names (user roles, or one system role for hosts).
    public var roles: [String]
    /// Allowed OS logins (users only).
    public var logins: [String]
    /// The cluster that issued the certificate.
    public var clusterName: String

    // OID of the logins attribute.
    static let loginsOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 1]
    // OID of the cluster name attribute.
    static let clusterOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 2]

    /// Creates an identity.
    public init(username: String, roles: [String], logins: [String] = [], clusterName: String) {
        self.username = username
        self.roles = roles
        self.logins = logins
        self.clusterName = clusterName
    }

    /// The system role when this is a cluster member's identity.
    public var systemRole: SystemRole? {
        roles.count == 1 ? SystemRole(rawValue: roles[0]) : nil
    }

    /// The subject name that encodes this identity.
    public func distinguishedName() throws -> DistinguishedName {
        var rdns: [RelativeDistinguishedName] = []
        rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.commonName, utf8String: username)))
        for role in roles {
            rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationName, utf8String: role)))
        }
        for login in logins {
            rdns.append(RelativeDistinguishedName(.init(type: Self.loginsOID, utf8String: login)))
        }
        rdns.append(RelativeDistinguishedName(.init(type: Self.clusterOID, utf8String: clusterName)))
        return DistinguishedName(rdns)
    }

    /// Reads the identity out of a certificate's subject.
    public init(certificate: Certificate) throws {
        var username: String?
        var roles: [String] = []
        var logins: [String] = []
        var cluster = ""
        for rdn in certificate.subject {
            for attribute in rdn {
                guard let value = String(attribute.value) else { continue }
                switch attribute.type {
                case .RDNAttributeType.commonName: username = value
                case .RDNAttributeType.organizationName: roles.append(value)
                case Self.loginsOID: logins.append(value)
                case Self.clusterOID: cluster = value
                default: continue
                }
            }
        }
        guard let username, !username.isEmpty else {
            throw TeleportError.accessDenied("the client certificate has no common name")
        }
        self.init(username: username, roles: roles, logins: logins, clusterName: cluster)
    }
}
