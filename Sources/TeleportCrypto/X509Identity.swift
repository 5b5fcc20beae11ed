import Foundation
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
    /// The user's traits when the certificate was issued (route certificates carry them, so a
    /// database service can expand `{{internal.db_users}}`); nil when absent.
    public var traits: [String: [String]]?
    /// The app this certificate is for (`tsh apps login`), nil in a plain user certificate.
    public var routeToApp: AppRoute?
    /// The Kubernetes cluster this certificate is for (`tsh kube login`), nil in a plain user
    /// certificate.
    public var kubernetesCluster: String?

    /// Where an app certificate leads: the app (its `app_server` name) and the public address
    /// the proxy serves it at.
    public struct AppRoute: Sendable, Equatable, Codable {
        /// The app's name (`app_service.apps[].name`).
        public var name: String
        /// The host name the proxy serves it at.
        public var publicAddr: String

        enum CodingKeys: String, CodingKey {
            case name
            case publicAddr = "public_addr"
        }

        /// Creates a route.
        public init(name: String, publicAddr: String) {
            self.name = name
            self.publicAddr = publicAddr
        }
    }

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
    // OID of the traits attribute (JSON).
    static let traitsOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 7]
    // OIDs of the app route's fields.
    static let appNameOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 8]
    static let appPublicAddrOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 9]
    // OID of the Kubernetes cluster route.
    static let kubeClusterOID: ASN1ObjectIdentifier = [1, 3, 9999, 1, 10]

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
        if let app = routeToApp {
            rdns.append(RelativeDistinguishedName(.init(type: Self.appNameOID, utf8String: app.name)))
            rdns.append(RelativeDistinguishedName(.init(type: Self.appPublicAddrOID, utf8String: app.publicAddr)))
        }
        if let kubernetesCluster {
            rdns.append(RelativeDistinguishedName(.init(type: Self.kubeClusterOID, utf8String: kubernetesCluster)))
        }
        if let traits {
            let json = try JSONEncoder.sorted.encode(traits)
            rdns.append(RelativeDistinguishedName(.init(type: Self.traitsOID, utf8String: String(decoding: json, as: UTF8.self))))
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
        var traits: [String: [String]]?
        for rdn in certificate.subject {
            for attribute in rdn {
                guard let value = String(attribute.value) else { continue }
                switch attribute.type {
                case .RDNAttributeType.commonName: username = value
                case .RDNAttributeType.organizationName: roles.append(value)
                case Self.loginsOID: logins.append(value)
                case Self.clusterOID: cluster = value
                case Self.dbServiceOID, Self.dbProtocolOID, Self.dbUserOID, Self.dbNameOID: route[attribute.type] = value
                case Self.appNameOID, Self.appPublicAddrOID, Self.kubeClusterOID: route[attribute.type] = value
                case Self.traitsOID: traits = try? JSONDecoder().decode([String: [String]].self, from: Data(value.utf8))
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
        self.traits = traits
        self.kubernetesCluster = route[Self.kubeClusterOID]
        if let app = route[Self.appNameOID] {
            self.routeToApp = AppRoute(name: app, publicAddr: route[Self.appPublicAddrOID] ?? "")
        }
    }
}

extension JSONEncoder {
    /// An encoder with sorted keys (the same traits encode to the same bytes).
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
