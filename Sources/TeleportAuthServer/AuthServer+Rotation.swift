public import Crypto
public import Foundation
public import TeleportAPI
import TeleportCrypto
import Logging
import Synchronization
import TeleportServices
import TeleportBackend
public import X509

extension AuthServer {
    /// Moves the rotation of the CA of `type` by `input` (``CARotation``): generates new keys for
    /// `init`, swaps or drops key sets, and writes the CA with a compare-and-swap on its revision, so
    /// that several auth servers (each runs ``RotationService``) never apply a step twice. Audited as
    /// `cert.rotation` with `user` (the caller, `system` for the automatic service).
    ///
    /// - Returns: the step taken, nil when a tick had nothing to do (or another auth server took it).
    @discardableResult
    public func rotate(_ type: CertAuthority.CAType, _ input: CARotation.Input, by user: String) async throws -> CARotation.Step? {
        for _ in 0..<5 {
            let current = try await certAuthority(type)
            guard let step = try CARotation.next(current.spec.rotation, input) else { return nil }
            var next = try current.applying(step.keys, newKeys: step.keys == .addNewKeys ? try generateKeys(type) : nil)
            next.spec.rotation = step.rotation
            do {
                try await stores.certAuthorities.update(next)
            } catch let error as TeleportError where error.code == .compareFailed {
                // Another auth server (or tctl) moved it first: look again.
                if case .tick = input { return nil }
                continue
            }
            forgetCachedAuthorities()
            logger.info(
                "certificate authority rotation moved",
                metadata: [
                    LogKeys.caType: "\(type.rawValue)", "tp.from": "\(step.from.rawValue)", "tp.phase": "\(step.to.rawValue)",
                    "tp.mode": "\(step.rotation.mode ?? "-")",
                ])
            var fields: [String: JSONValue] = [
                "cert_type": .string(type.rawValue), "phase": .string(step.to.rawValue), "from": .string(step.from.rawValue),
                "user": .string(user), "cluster_name": .string(clusterName),
            ]
            if let mode = step.rotation.mode { fields["mode"] = .string(mode) }
            if let ends = step.rotation.schedule?.standby { fields["grace_period_ends"] = .string(RFC3339.format(ends)) }
            try await emit(AuditEventType.certRotation, fields: fields)
            for observer in rotationObservers.withLock({ $0 }) { await observer() }
            return step
        }
        throw TeleportError.compareFailed("the \(type.rawValue) CA kept changing during five attempts to rotate it; retry")
    }

    /// Calls `observer` after each rotation step this auth server takes, before the step's caller
    /// (`tctl auth rotate`) gets its answer: the auth API's own certificate and trust, and the local
    /// administrator identity, follow the step at once instead of at their next periodic look.
    public func onRotation(_ observer: @escaping @Sendable () async -> Void) {
        rotationObservers.withLock { $0.append(observer) }
    }

    /// One look of the automatic rotation: every CA whose automatic rotation is due moves on (each
    /// at most one phase; the service looks again soon).
    public func tickRotations() async throws {
        for type in CertAuthority.CAType.allCases {
            try await rotate(type, .tick(now: clock.now()), by: "system")
        }
    }

    /// `POST /v1/certauthorities/rotate` after its rule check: `auto` starts an automatic rotation,
    /// `manual` moves to `phase`.
    public func rotate(_ request: AuthAPI.RotateRequest, by user: String) async throws -> AuthAPI.RotateResponse {
        guard let type = CertAuthority.CAType(rawValue: request.type) else {
            throw TeleportError.badParameter(
                "--type=\(request.type) is not a CA type (expected \(CertAuthority.CAType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let now = clock.now()
        let input: CARotation.Input
        switch CARotation.Mode(rawValue: request.mode) {
        case .auto:
            guard request.phase == nil else { throw TeleportError.badParameter("--phase needs --manual") }
            input = .start(mode: .auto, gracePeriod: request.gracePeriodSeconds ?? CARotation.defaultGracePeriod, now: now)
        case .manual:
            guard let text = request.phase, let phase = CARotation.Phase(rawValue: text) else {
                throw TeleportError.badParameter(
                    "--manual needs --phase=init|update_clients|update_servers|standby|rollback (got \(request.phase.map { "\"\($0)\"" } ?? "none"))")
            }
            if phase == .initialized, let grace = request.gracePeriodSeconds {
                input = .start(mode: .manual, gracePeriod: grace, now: now)
            } else {
                input = .setPhase(phase, now: now)
            }
        case nil:
            throw TeleportError.badParameter("mode \"\(request.mode)\" is not auto or manual")
        }
        guard let step = try await rotate(type, input, by: user) else {
            throw TeleportError.internalError("the rotation did not move")
        }
        return AuthAPI.RotateResponse(
            type: type.rawValue, from: step.from.rawValue, phase: step.to.rawValue, mode: step.rotation.mode,
            gracePeriodEnds: step.rotation.schedule?.standby)
    }

    /// A host's new identity for the same role, host and names as the certificate it presents,
    /// from the host CA's active keys (agents renew in a rotation's `update_clients` and later
    /// phases, and after a rollback). The old certificate of a Node or Proxy stops being current.
    public func renewHostIdentity(presented leaf: Certificate, role: SystemRole, publicKeyPEM: String) async throws -> AuthAPI.JoinResponse {
        guard role != .admin, role != .auth else {
            throw TeleportError.accessDenied("only agents (Node, Proxy, Db, App) renew their identity this way")
        }
        let publicKey: P256.Signing.PublicKey
        do {
            publicKey = try P256.Signing.PublicKey(pemRepresentation: publicKeyPEM)
        } catch {
            throw TeleportError.badParameter("public_key is not a P-256 public key in PEM")
        }
        let identity = try X509Identity(certificate: leaf)
        let names = TLSAuthority.ServerNames(of: leaf)
        if role == .node || role == .proxy {
            // Requests the host sends with the old certificate until it switches stay accepted a minute.
            try await stores.backend.put(
                Item(
                    key: Self.previousHostIdentityKey(identity.username, role), value: Data(String(describing: leaf.serialNumber).utf8),
                    expires: clock.now().addingTimeInterval(Self.renewalOverlap)))
        }
        let issued = try await issueSystemIdentity(
            role: role, hostID: identity.username, publicKey: publicKey,
            serverNames: names.isEmpty ? nil : names)
        try await emit(
            AuditEventType.certCreate,
            fields: ["cert_type": "host", "identity": .string(identity.username), "role": .string(role.rawValue), "reason": "renewal"])
        return AuthAPI.JoinResponse(clusterName: clusterName, certificatePEM: issued.certificatePEM, caPEMs: issued.caPEMs)
    }
}
