import Crypto
import Foundation
import Logging
import TeleportAPI
import TeleportAuthClient
import TeleportAuthServer
import TeleportCrypto
import TeleportEvents
import TeleportBackendPostgres
import ServiceLifecycle

/// The identities of services that run in the auth service's process (and of the local admin for
/// `tctl`): issued directly by the auth service at start and written to `data_dir/keys` (0600).
/// Proxy and node still talk to auth through the API with them, as they would from another host.
enum LocalIdentities {
    static func fileName(_ role: SystemRole) -> String { role.rawValue.lowercased() }

    static func write(auth: AuthServer, hostUUID: String, keys: URL, roles: [SystemRole]) async throws {
        for role in roles {
            let key = P256.Signing.PrivateKey()
            let id = role == .admin ? "admin" : "\(hostUUID).\(auth.clusterName)"
            // The proxy's certificate also serves kubectl on the web port (its kubeconfig names
            // AuthAPI.kubeProxyServerName and trusts the host CA).
            let names = role == .proxy ? TLSAuthority.ServerNames(dnsNames: [AuthAPI.kubeProxyServerName, "localhost"], ipAddresses: ["127.0.0.1"]) : nil
            let issued = try await auth.issueSystemIdentity(role: role, hostID: id, publicKey: key.publicKey, serverNames: names)
            let identity = ClientIdentity(keyPEM: key.pemRepresentation, certificatePEM: issued.certificatePEM, trustedCAPEMs: issued.caPEMs)
            try identity.save(directory: keys, name: fileName(role))
        }
    }

    /// The identity of `role` on this host: from `data_dir/keys`, or — on a host without the auth
    /// service — obtained by joining with the token (then saved, so later starts need no token).
    static func loadOrJoin(
        keys: URL, role: SystemRole, config: DaemonConfig, authServer: String, hostUUID: String, logger: Logger
    ) async throws -> ClientIdentity {
        if let existing = try? ClientIdentity.load(directory: keys, name: fileName(role)) { return existing }
        guard let token = config.token, !token.isEmpty else {
            throw TeleportError.badParameter(
                "this host has not joined the cluster yet: pass --token (from `tctl nodes add` on the auth server) "
                    + "and --auth-server, or set teleport.auth_token")
        }
        let hostKey = role == .node || role == .proxy ? try SSHHostKey.loadOrCreate(keys: keys).publicKey.authorizedKeyLine() : nil
        // A host that already joined in its other role proves it owns its UUID with that identity.
        let other: SystemRole = role == .node ? .proxy : .node
        let presenting = try? ClientIdentity.load(directory: keys, name: fileName(other))
        // An unreachable auth server is retried with backoff (a clear line each time, never a
        // tight loop); a refusal (bad token, wrong pin) ends the start at once.
        var delay = Duration.seconds(1)
        var joined: (identity: ClientIdentity, clusterName: String)?
        while joined == nil {
            do {
                joined = try await JoinClient.join(
                    authServer: authServer, token: token, caPins: config.caPins, role: role, hostUUID: hostUUID,
                    nodeName: config.nodeName, addresses: [config.advertiseIP].compactMap { $0 }, sshHostPublicKey: hostKey,
                    presenting: presenting, logger: logger)
            } catch let error as TeleportError where error.code == .connectionProblem {
                logger.warning("cannot join yet; retrying in \(delay)", metadata: ["tp.error": "\(error.message)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        guard let (identity, clusterName) = joined else { throw CancellationError() }
        try identity.save(directory: keys, name: fileName(role))
        logger.info("joined the cluster", metadata: ["tp.cluster": "\(clusterName)", "tp.role": "\(role.rawValue)"])
        return identity
    }

    /// Deletes a role's stored identity (the cluster removed this host).
    static func remove(keys: URL, role: SystemRole) {
        for suffix in ["key", "crt"] {
            try? FileManager.default.removeItem(at: keys.appendingPathComponent("\(fileName(role)).\(suffix)"))
        }
    }

    static func load(keys: URL, role: SystemRole) throws -> ClientIdentity {
        do {
            return try ClientIdentity.load(directory: keys, name: fileName(role))
        } catch let error as TeleportError where error.code == .notFound {
            throw TeleportError.notFound(
                "this host has no \(role.rawValue.lowercased()) identity in \(keys.path): join the cluster with --token and --auth-server")
        }
    }
}

/// The node's SSH host key (Ed25519, OpenSSH format, `data_dir/keys/ssh_host_ed25519_key`, 0600),
/// created on first use. Its public half is registered with the cluster at join, so clients trust
/// exactly the key the cluster vouches for.
enum SSHHostKey {
    static func loadOrCreate(keys: URL) throws -> OpenSSHPrivateKey {
        let url = keys.appendingPathComponent("ssh_host_ed25519_key")
        if let text = try? String(contentsOf: url, encoding: .utf8) {
            return try OpenSSHPrivateKey(pemRepresentation: text)
        }
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = OpenSSHPrivateKey(.ed25519(Curve25519.Signing.PrivateKey()), comment: "teleport host key")
        try SecureFile.write(Data(key.pemRepresentation().utf8), to: url)
        return key
    }
}

/// The proxy's HTTPS key pair: `https_keypairs` when configured, else a self-signed one kept in
/// `data_dir/keys/webproxy_{cert,key}.pem`.
enum ProxyCertificate {
    static func load(config: DaemonConfig, keys: URL, clock: any WallClock) throws -> (certificatePEM: String, keyPEM: String) {
        if let pair = config.file.proxy.httpsKeyPairs.first {
            guard let cert = try? String(contentsOfFile: pair.certFile, encoding: .utf8),
                let key = try? String(contentsOfFile: pair.keyFile, encoding: .utf8)
            else {
                throw TeleportError.notFound(
                    "proxy_service.https_keypairs: cannot read \(pair.certFile) or \(pair.keyFile)")
            }
            return (cert, key)
        }
        let certURL = keys.appendingPathComponent("webproxy_cert.pem")
        let keyURL = keys.appendingPathComponent("webproxy_key.pem")
        if let cert = try? String(contentsOf: certURL, encoding: .utf8), let key = try? String(contentsOf: keyURL, encoding: .utf8) {
            return (cert, key)
        }
        var dns = ["localhost", config.nodeName]
        var ips = ["127.0.0.1", "::1"]
        for address in config.file.proxy.publicAddrs {
            if let host = try? HostPort.parse(address, defaultPort: 3080, key: "public_addr").host {
                if IPAddressBytes.parse(host) != nil { ips.append(host) } else { dns.append(host) }
            }
        }
        if let advertise = config.advertiseIP { ips.append(advertise) }
        let generated = try TLSAuthority.selfSignedServer(
            commonName: config.nodeName, names: .init(dnsNames: dns, ipAddresses: ips), clock: clock)
        try SecureFile.write(Data(generated.keyPEM.utf8), to: keyURL)
        try SecureFile.write(Data(generated.certificatePEM.utf8), to: certURL, mode: 0o644)
        return generated
    }
}

/// The audit sinks named by `audit_events_uri` (default: `file://data_dir/log`); the first that can
/// be searched is the one `tctl events ls` reads and `tctl audit verify` checks.
enum AuditLogs {
    static func open(uris: [String], dataDir: DataDirectory, hostUUID: String, logger: Logger) async throws -> any AuditEmitter {
        if uris.isEmpty { return try FileAuditLog(directory: dataDir.logDirectory) }
        var emitters: [any AuditEmitter] = []
        for uri in uris {
            if uri.hasPrefix("file://") {
                emitters.append(try FileAuditLog(directory: URL(fileURLWithPath: String(uri.dropFirst("file://".count)))))
            } else if uri == "stdout://" || uri.hasPrefix("stdout:") {
                emitters.append(StdoutAuditLog())
            } else if uri.hasPrefix("postgresql://") || uri.hasPrefix("postgres://") {
                emitters.append(try await PostgresAuditLog.open(uri: uri, chain: hostUUID, logger: logger))
            } else {
                throw TeleportError.badParameter(unsupported(uri))
            }
        }
        return MultiEmitter(emitters)
    }

    /// The message for an `audit_events_uri` of an unknown kind.
    static func unsupported(_ uri: String) -> String {
        "teleport.storage.audit_events_uri: \"\(uri)\" is not supported (use file:///path, postgresql://USER@HOST:PORT/DB?sslmode=verify-full&... or stdout://)"
    }

    /// True when `uri` names a kind of audit log this teleport writes.
    static func isSupported(_ uri: String) -> Bool {
        ["file://", "stdout:", "postgresql://", "postgres://"].contains { uri.hasPrefix($0) }
    }

    /// The PostgreSQL logs among `emitter`'s, to close at shutdown.
    static func postgresLogs(of emitter: any AuditEmitter) -> [PostgresAuditLog] {
        if let log = emitter as? PostgresAuditLog { return [log] }
        return (emitter as? MultiEmitter)?.emitters.compactMap { $0 as? PostgresAuditLog } ?? []
    }
}

/// Closes the `postgresql://` audit logs' connections when the daemon stops (after the auth API,
/// which is stopped first: services stop in reverse order).
struct AuditLogCloser: Service, CustomStringConvertible {
    let logs: [PostgresAuditLog]
    var description: String { "AuditLogCloser" }
    func run() async throws {
        try? await gracefulShutdown()
        for log in logs { await log.close() }
    }
}

/// The `--pid-file`: written at start, removed at exit (when it still names this process).
final class PIDFile: Sendable {
    let path: String

    init?(path: String?) throws {
        guard let path else { return nil }
        self.path = path
        do {
            try write()
        } catch {
            throw TeleportError.accessDenied("cannot write the pid file \(path): \(error.localizedDescription)")
        }
    }

    /// Writes this process's pid (again: a new process that failed may have written its own).
    func write() throws {
        try Data("\(ProcessInfo.processInfo.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Removes the file unless another process wrote its own pid there (the process a graceful
    /// restart started: the pid file follows the serving process).
    func remove() {
        let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text == nil || text == "\(ProcessInfo.processInfo.processIdentifier)" else { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}
