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
    /// The database this certificate is for (`tsh db login`), nil in a plain user certificate.
    public var routeToDatabase: DatabaseRoute?

    /// Where a database certificate leads: the database (its `db_server` name), its protocol,
    /// and the database user and database name to connect as.
    public struct DatabaseRoute: Sendable, Equatable, Codable {
        /// The database's name (`db_service.databases[].name`).
        public var serviceName: String
        /// `postgres` or `mysql`.
        public var `protocol`: String
        /// The database user.
        public var username: String
        /// The database name (empty: the user's default).
        public var database: String

        enum CodingKeys: String, CodingKey {
            case `protocol`, username, database
            case serviceName = "service_name"
        }

        /// Creates a route.
        public init(serviceName: String, protocol: String, username: String, database: String) {
            self.serviceName = serviceName
            self.protocol = `protocol`
            self.username = username
            self.database = database
        }
    }

    // OID of the logins attribute.
    static let loginsOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 1]
    // OID of the cluster name attribute.
    static let clusterOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 2]
    // OIDs of the database route's fields.
    static let dbServiceOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 3]
    static let dbProtocolOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 4]
    static let dbUserOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 5]
    static let dbNameOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 6]

    /// Creates an identity.
    public init(username: String, roles: [String], logins: [String] = [], clusterName: String, routeToDatabase: DatabaseRoute? = nil) {
        self.username = username
        self.roles = roles
        self.logins = logins
        self.clusterName = clusterName
        self.routeToDatabase = routeToDatabase
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
        if let route = routeToDatabase {
            for (oid, value) in [
                (Self.dbServiceOID, route.serviceName), (Self.dbProtocolOID, route.protocol), (Self.dbUserOID, route.username),
                (Self.dbNameOID, route.database),
            ] {
                rdns.append(RelativeDistinguishedName(.init(type: oid, utf8String: value)))
            }
        }
        return DistinguishedName(rdns)
    }

    /// Reads the identity out of a certificate's subject.
    public init(certificate: Certificate) throws {
        var username: String?
        var roles: [String] = []
        var logins: [String] = []
        var cluster = ""
        var route: [ASN1ObjectIdentifier: String] = [:]
        for rdn in certificate.subject {
            for attribute in rdn {
                guard let value = String(attribute.value) else { continue }
                switch attribute.type {
                case .RDNAttributeType.commonName: username = value
                case .RDNAttributeType.organizationName: roles.append(value)
                case Self.loginsOID: logins.append(value)
                case Self.clusterOID: cluster = value
                case Self.dbServiceOID, Self.dbProtocolOID, Self.dbUserOID, Self.dbNameOID: route[attribute.type] = value
                default: continue
                }
            }
        }
        guard let username, !username.isEmpty else {
            throw TeleportError.accessDenied("the client certificate has no common name")
        }
        var routeToDatabase: DatabaseRoute?
        if let service = route[Self.dbServiceOID] {
            routeToDatabase = DatabaseRoute(
                serviceName: service, protocol: route[Self.dbProtocolOID] ?? "", username: route[Self.dbUserOID] ?? "",
                database: route[Self.dbNameOID] ?? "")
        }
        self.init(username: username, roles: roles, logins: logins, clusterName: cluster, routeToDatabase: routeToDatabase)
    }
}
