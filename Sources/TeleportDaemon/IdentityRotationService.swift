import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TeleportAPI
import TeleportAuthClient
import TeleportAuthServer
import TeleportCrypto
import TeleportTunnel
import X509

/// Keeps an agent's host identity (node, proxy) current through CA rotations, without a restart.
///
/// Every ``interval`` it reads the user and host CAs (agents may read them). When the trusted CA
/// certificates change (a rotation's `init`, `standby`) it trusts the new set; when the host CA's
/// signing keys are not the ones that signed its certificate and the rotation is past `init`
/// (`update_clients`, `update_servers`, `rollback`, `standby`), it asks for a new certificate with a
/// fresh key (`POST /v1/certs/renew`). Either way it writes `data_dir/keys/<role>.*` (0600), reloads
/// the auth client and calls the listeners (the tunnel's TLS contexts). A host whose certificate the
/// cluster no longer trusts (down past the grace period) is told to join again.
struct IdentityRotationService: Service, CustomStringConvertible {
    let role: SystemRole
    let keys: URL
    let client: AuthClient
    let identity: LiveIdentity
    var interval: Duration = .seconds(2)
    let logger: Logger

    var description: String { "IdentityRotationService(\(role.rawValue))" }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastProblem = ""
            while !Task.isCancelled {
                do {
                    try await check()
                    lastProblem = ""
                } catch {
                    let message = (error as? TeleportError)?.message ?? "\(error)"
                    // Down through init and update_clients: the auth service's new certificate comes
                    // from a CA this host does not know yet; the CA it trusts vouches for it.
                    if await adoptVouchedCAs() {
                        lastProblem = ""
                        continue
                    }
                    if message != lastProblem {
                        lastProblem = message
                        if await Self.distrusted(identity.current, authServer: client.address) {
                            let text =
                                "this host's certificate is from a CA the cluster no longer trusts (it was down past a rotation's grace period): "
                                + "join again with a new token (tctl nodes add), after removing \(keys.path)/\(LocalIdentities.fileName(role)).*"
                            logger.error("\(text)")
                        } else {
                            logger.warning("cannot check the CA rotation yet; retrying", metadata: ["tp.error": "\(message)"])
                        }
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// The CA state agents act on: the host CA and every trusted cluster CA certificate.
    struct Trusted {
        var host: CertAuthority
        var pems: [String]
    }

    static func trusted(_ client: AuthClient) async throws -> Trusted {
        var pems: [String] = []
        var host: CertAuthority?
        for type in CertAuthority.CAType.clusterTrust {
            guard case .certAuthority(let ca) = try await client.resource(kind: CertAuthority.kind, name: type.rawValue) else {
                throw TeleportError.internalError("the auth service sent another kind for cert_authority/\(type.rawValue)")
            }
            pems += ca.trustedKeys.tls.map(\.cert)
            if type == .host { host = ca }
        }
        guard let host else { throw TeleportError.internalError("no host CA") }
        return Trusted(host: host, pems: pems)
    }

    /// True when the auth service publishes host CAs and none of them signed the identity's certificate.
    static func distrusted(_ identity: ClientIdentity, authServer: String) async -> Bool {
        guard let pems = try? await JoinClient.publishedHostCAs(authServer: authServer), !pems.isEmpty,
            let leaf = try? Certificate.fromPEM(identity.certificatePEM)
        else { return false }
        let roots = pems.compactMap { try? Certificate.fromPEM($0) }
        return !roots.contains { $0.publicKey.isValidSignature(leaf.signature, for: leaf) }
    }

    func check() async throws {
        let trusted = try await Self.trusted(client)
        let current = identity.current
        let leaf = try Certificate.fromPEM(current.certificatePEM)
        let active = try trusted.host.spec.activeKeys.tls.map { try Certificate.fromPEM($0.cert) }
        let signedByActive = active.contains { $0.publicKey.isValidSignature(leaf.signature, for: leaf) }
        let phase = trusted.host.rotationPhase
        if !signedByActive, phase != .initialized {
            let key = P256.Signing.PrivateKey()
            let renewed = try await client.renewIdentity(publicKeyPEM: key.publicKey.pemRepresentation)
            let next = ClientIdentity(keyPEM: key.pemRepresentation, certificatePEM: renewed.certificatePEM, trustedCAPEMs: trusted.pems)
            try identity.set(next, keys: keys, role: role, client: client)
            logger.info(
                "renewed this host's identity from the host CA's new keys", metadata: ["tp.role": "\(role.rawValue)", "tp.phase": "\(phase.rawValue)"])
            return
        }
        if try Self.certificates(current.trustedCAPEMs) != Self.certificates(trusted.pems) {
            let next = ClientIdentity(keyPEM: current.keyPEM, certificatePEM: current.certificatePEM, trustedCAPEMs: trusted.pems)
            try identity.set(next, keys: keys, role: role, client: client)
            logger.info("now trusting the cluster's current CAs", metadata: ["tp.role": "\(role.rawValue)", "tp.phase": "\(phase.rawValue)"])
        }
    }

    /// Trusts the host CA certificates `/v1/join/ca` publishes that a CA this host trusts has
    /// cross-signed (``TLSAuthority/vouched(candidates:crossSigned:trusted:)``); true when it
    /// added one. The answer comes over an unchecked connection: only the cross-signature counts.
    func adoptVouchedCAs() async -> Bool {
        guard let published = try? await JoinClient.publishedHostCAList(authServer: client.address),
            let crossSigned = published.crossSignedPEMs, !crossSigned.isEmpty
        else { return false }
        let current = identity.current
        do {
            let trusted = try current.trustedCAPEMs.flatMap { try Certificate.bundleFromPEM($0) }
            let vouched = TLSAuthority.vouched(
                candidates: try published.hostCAPEMs.map { try Certificate.fromPEM($0) },
                crossSigned: try crossSigned.map { try Certificate.fromPEM($0) }, trusted: trusted)
            let added = vouched.filter { !trusted.contains($0) }
            guard !added.isEmpty else { return false }
            let next = ClientIdentity(
                keyPEM: current.keyPEM, certificatePEM: current.certificatePEM,
                trustedCAPEMs: current.trustedCAPEMs + (try added.map { try $0.pemText() }))
            try identity.set(next, keys: keys, role: role, client: client)
            logger.info(
                "now trusting the host CA's new keys, cross-signed by the CA this host trusted (it missed the rotation's first phases)",
                metadata: ["tp.role": "\(role.rawValue)"])
            return true
        } catch {
            logger.warning("cannot check the published host CAs", metadata: ["tp.error": "\(error)"])
            return false
        }
    }

    /// The DER of each certificate in `pems` (a file may hold several), as a set.
    static func certificates(_ pems: [String]) throws -> Set<[UInt8]> {
        Set(try pems.flatMap { try Certificate.bundleFromPEM($0) }.map { try $0.derBytes() })
    }
}

/// A host identity that changes while the process runs (see ``IdentityRotationService``).
final class LiveIdentity: Sendable {
    private let state: Mutex<ClientIdentity>
    private let listeners = Mutex<[@Sendable (ClientIdentity) throws -> Void]>([])

    init(_ identity: ClientIdentity) {
        state = Mutex(identity)
    }

    var current: ClientIdentity { state.withLock { $0 } }

    /// Calls `listener` with every later identity.
    func onChange(_ listener: @escaping @Sendable (ClientIdentity) throws -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Saves `identity`, presents it from the next request of `client` on and tells the listeners.
    func set(_ identity: ClientIdentity, keys: URL, role: SystemRole, client: AuthClient) throws {
        try identity.save(directory: keys, name: LocalIdentities.fileName(role))
        try client.reload(identity: identity)
        state.withLock { $0 = identity }
        for listener in listeners.withLock({ $0 }) { try listener(identity) }
    }
}

/// The auth host's local administrator identity (`data_dir/keys/admin.*`, what `tctl` on this host
/// presents) through CA rotations: issued again directly by the auth service once the host CA's
/// signing keys changed (from `update_clients` on), and its trusted CAs follow `init` and
/// `standby`, so `tctl` keeps working through and after a rotation. It looks every ``interval``
/// and after each rotation step this auth server takes (``AuthServer/onRotation(_:)``).
struct LocalAdminRenewal: Service, CustomStringConvertible {
    let auth: AuthServer
    let keys: URL
    let hostUUID: String
    var interval: Duration = .seconds(2)
    let logger: Logger
    /// One check at a time: the periodic loop and ``AuthServer/onRotation(_:)`` both call
    /// ``check()``, and two renewals at once interleaved their renames (key of one, certificate of
    /// the other), leaving an admin identity whose key and certificate never matched again (under
    /// load, `tctl` then failed with "failedToLoadPrivateKey" until the next rotation).
    let serial = SerialGate()

    var description: String { "LocalAdminRenewal" }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await check()
                } catch {
                    logger.debug("cannot check the local admin identity", metadata: ["tp.error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    func check() async throws {
        await serial.acquire()
        do {
            try await checkOnce()
            await serial.release()
        } catch {
            await serial.release()
            throw error
        }
    }

    func checkOnce() async throws {
        let host = try await auth.certAuthority(.host)
        let identity = try LocalIdentities.load(keys: keys, role: .admin)
        if host.rotationPhase != .initialized {
            let leaf = try Certificate.fromPEM(identity.certificatePEM)
            let active = try host.spec.activeKeys.tls.map { try Certificate.fromPEM($0.cert) }
            if !active.contains(where: { $0.publicKey.isValidSignature(leaf.signature, for: leaf) }) {
                auth.forgetCachedAuthorities()
                try await LocalIdentities.write(auth: auth, hostUUID: hostUUID, keys: keys, roles: [.admin])
                logger.info("renewed the local admin identity from the host CA's new keys", metadata: ["tp.phase": "\(host.rotationPhase.rawValue)"])
                return
            }
        }
        // init adds the new CA certificates and standby drops the old ones: tctl trusts what the
        // auth API will present (it presents the new CA's certificate from update_servers on).
        let trusted = try await auth.caPEMs()
        guard try IdentityRotationService.certificates(identity.trustedCAPEMs) != IdentityRotationService.certificates(trusted) else { return }
        let next = ClientIdentity(keyPEM: identity.keyPEM, certificatePEM: identity.certificatePEM, trustedCAPEMs: trusted)
        try next.save(directory: keys, name: LocalIdentities.fileName(.admin))
        logger.info("the local admin identity now trusts the cluster's current CAs", metadata: ["tp.phase": "\(host.rotationPhase.rawValue)"])
    }
}

extension TeleportProcess {
    /// An agent identity (database, application, Kubernetes service) that follows CA rotations:
    /// an ``IdentityRotationService`` renews it and changes its trusted CAs; the caller's contexts
    /// listen on the returned ``LiveIdentity``.
    static func followRotation(
        role: SystemRole, identity: ClientIdentity, client: AuthClient, config: DaemonConfig, keys: URL, logger: Logger,
        services: inout [any Service]
    ) -> LiveIdentity {
        let live = LiveIdentity(identity)
        services.append(
            IdentityRotationService(
                role: role, keys: keys, client: client, identity: live, interval: config.rotationCheckInterval,
                logger: logger.with("\(role.rawValue.lowercased()):rotation")))
        return live
    }

    /// The agent's reverse tunnel dials with the current identity and trusts the current CAs.
    static func followRotation(_ target: inout TunnelTarget, live: LiveIdentity) {
        let contexts = TLSContextSource(target.tlsContext)
        target.contextSource = contexts
        live.onChange { renewed in
            contexts.set(
                try TunnelTLS.clientTLSContext(certificatePEM: renewed.certificatePEM, keyPEM: renewed.keyPEM, trustedCAPEMs: renewed.trustedCAPEMs))
        }
    }
}


/// Lets one caller at a time through (in the order they came): for work that must not overlap,
/// such as rewriting an identity's files.
actor SerialGate {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
