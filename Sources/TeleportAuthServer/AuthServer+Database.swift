import Crypto
import X509
import Foundation
public import TeleportAPI
import TeleportCrypto
import TeleportEvents
import TeleportServices

extension AuthServer {
    /// The longest lifetime of a database certificate (a server's is typically `2190h`).
    static let maximumDatabaseCertificateTTL: TimeInterval = 10 * 365 * 86400

    /// `tctl auth sign --format=db`: a certificate from the database CA for a key the requester
    /// proved to hold: a server certificate (CN = the first name, SANs = every name) or a client
    /// certificate (CN = the database user).
    ///
    /// - Throws: ``TeleportError`` `badParameter` for missing or malformed names, key or TTL;
    ///   `accessDenied` when the proof of possession does not verify.
    public func signDatabase(_ request: AuthAPI.SignDatabaseRequest) async throws -> AuthAPI.SignDatabaseResponse {
        guard request.ttlSeconds > 0, request.ttlSeconds <= Self.maximumDatabaseCertificateTTL else {
            throw TeleportError.badParameter("--ttl must be positive and at most 10 years (87600h)")
        }
        let publicKey: P256.Signing.PublicKey
        do {
            publicKey = try P256.Signing.PublicKey(pemRepresentation: request.publicKeyPEM)
        } catch {
            throw TeleportError.badParameter("public_key is not an ECDSA P-256 public key in PEM form")
        }
        let commonName: String
        let serverNames: TLSAuthority.ServerNames?
        switch request.usage {
        case .server:
            guard request.user == nil else {
                throw TeleportError.badParameter("a database server certificate takes --host names, not --user")
            }
            serverNames = try Self.databaseServerNames(request.hosts)
            commonName = request.hosts[0]
        case .client:
            guard request.hosts.isEmpty else {
                throw TeleportError.badParameter("a database client certificate takes --user, not --host names")
            }
            guard let user = request.user else {
                throw TeleportError.badParameter("a database client certificate needs --user=NAME (the database user)")
            }
            try Self.validateDatabaseUser(user)
            commonName = user
            serverNames = nil
        }
        try DatabaseCertProof.verify(request, publicKey: publicKey, now: clock.now())
        let authority = try await tlsAuthority(.db)
        let certificate = try authority.issueDatabase(
            publicKey: publicKey, commonName: commonName, serverNames: serverNames, validity: request.ttlSeconds, clock: clock)
        settings.metrics?.increment(.certificatesIssued, ["type": "db"])
        return AuthAPI.SignDatabaseResponse(
            certificatePEM: try certificate.pemText(), caPEMs: try await certAuthority(.db).trustedKeys.tls.map(\.cert))
    }

    /// Splits `--host` names into DNS names and IP addresses; every name must be one or the other.
    static func databaseServerNames(_ hosts: [String]) throws -> TLSAuthority.ServerNames {
        guard !hosts.isEmpty else {
            throw TeleportError.badParameter("--host needs at least one DNS name or IP address of the database server")
        }
        var names = TLSAuthority.ServerNames()
        for host in hosts {
            if IPAddressBytes.parse(host) != nil {
                names.ipAddresses.append(host)
            } else if isDNSName(host) {
                names.dnsNames.append(host)
            } else {
                throw TeleportError.badParameter(
                    "--host: \"\(host.prefix(64))\" is neither a DNS name nor an IP address (comma-separated names such as db.example.com,10.0.0.5)")
            }
        }
        return names
    }

    /// A DNS name (or a `*.` wildcard): labels of letters, digits, `-` and `_`, at most 253 bytes.
    static func isDNSName(_ name: String) -> Bool {
        let labels = (name.hasPrefix("*.") ? String(name.dropFirst(2)) : name).split(separator: ".", omittingEmptySubsequences: false)
        return name.utf8.count <= 253 && !labels.isEmpty
            && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                    && label.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
            }
    }

    /// A database user name for a certificate's common name: 1–63 printable characters without
    /// `/`, `,`, `=`, `+` (they would change the subject's text form that databases compare).
    static func validateDatabaseUser(_ user: String) throws {
        guard (1...63).contains(user.utf8.count),
            user.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && !"/,=+\\\"<>;#".unicodeScalars.contains($0) })
        else {
            throw TeleportError.badParameter(
                "--user: \"\(user.prefix(64))\" is not a database user name for a certificate (1-63 printable ASCII characters, no spaces or / , = + \\ \" < > ; #)")
        }
    }
}

extension AuthServer {
    /// The longest client certificate a database service may ask for (one session's).
    static let maximumDatabaseSessionCertificateTTL: TimeInterval = 12 * 3600

    /// `tsh db login`: a copy of the user's current X.509 certificate (same key, identity and
    /// expiry, from the user CA) that also carries the database route. The certificate must be
    /// this cluster's user CA's, current, and a user's; the user must still exist and the
    /// database must be registered with the protocol it names. Whether the roles allow the
    /// database user and name is decided by the database service at each connection.
    ///
    /// - Returns: the certificate and the user's name.
    /// - Throws: ``TeleportError`` `accessDenied` for a certificate that is not a current user
    ///   certificate of this cluster, `notFound` for an unknown database, `badParameter` for bad
    ///   names.
    public func issueDatabaseRouteCertificate(_ request: AuthAPI.DatabaseRouteCertRequest) async throws
        -> (AuthAPI.DatabaseRouteCertResponse, String)
    {
        let presented: Certificate
        do {
            presented = try Certificate.fromPEM(request.userCertificatePEM)
        } catch {
            throw TeleportError.badParameter("user_certificate is not a PEM certificate")
        }
        let authority = try await tlsAuthority(.user)
        guard try await signedByTrusted(.user, presented) else {
            throw TeleportError.accessDenied("the certificate is not signed by this cluster's user CA")
        }
        let now = clock.now()
        guard presented.notValidBefore <= now, now < presented.notValidAfter else {
            throw TeleportError.accessDenied("the certificate has expired: log in again (tsh login)")
        }
        var identity = try X509Identity(certificate: presented)
        guard identity.clusterName == clusterName, identity.systemRole == nil else {
            throw TeleportError.accessDenied("only a user certificate of this cluster can carry a database route")
        }
        let user = try await stores.users.get(identity.username)
        identity.traits = user.spec.traits
        try ResourceName.validate(request.serviceName, kind: "database name")
        try Self.validateDatabaseUser(request.username)
        guard request.database.utf8.count <= 63, request.database.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw TeleportError.badParameter("--db-name must be at most 63 printable ASCII characters without spaces")
        }
        guard let database = try await databases().first(where: { $0.name == request.serviceName }) else {
            throw TeleportError.notFound("database \"\(request.serviceName)\" is not registered (tsh db ls lists them)")
        }
        identity.routeToDatabase = X509Identity.DatabaseRoute(
            serviceName: database.name, protocol: database.spec.protocol.rawValue, username: request.username, database: request.database)
        guard let key = P256.Signing.PublicKey(presented.publicKey) else {
            throw TeleportError.badParameter("the user certificate's key is not ECDSA P-256")
        }
        let validity = presented.notValidAfter.timeIntervalSince(now)
        let certificate = try authority.issue(publicKey: key, identity: identity, validity: validity, clock: clock)
        settings.metrics?.increment(.certificatesIssued, ["type": "db_route"])
        return (AuthAPI.DatabaseRouteCertResponse(certificatePEM: try certificate.pemText()), identity.username)
    }
}
