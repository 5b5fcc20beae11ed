public import Foundation
public import TeleportAPI
import TeleportAccess
import Crypto
import HummingbirdBcrypt
import Logging
import TeleportCrypto
import TeleportEvents
import TeleportServices
import X509

extension AuthServer {
    /// Password rules.
    static let minimumPasswordLength = 12
    /// bcrypt reads at most 72 bytes; longer passwords are refused rather than silently cut.
    static let maximumPasswordBytes = 72
    /// Failed logins allowed within ``lockoutWindow`` before the account locks.
    static let maxFailures = 5
    /// The window for counting failures, and how long a lock lasts.
    static let lockoutWindow: TimeInterval = 30 * 60
    /// A bcrypt hash to verify against for unknown users, so that they take as long as known ones.
    static let decoyHash = Bcrypt.hash("decoy password for timing", cost: 12)

    /// The role every new user gets by default (`access`: SSH to every node as the user's logins,
    /// and every Kubernetes cluster as the user's `kubernetes_users`/`kubernetes_groups` traits,
    /// which `tctl users add --k8s-groups` and GitHub's `teams_to_logins` set; a user without them
    /// is refused by the Kubernetes service).
    static let presetAccessRole: Role = {
        var allow = Role.Conditions(logins: ["{{internal.logins}}"], nodeLabels: ["*": LabelValues(["*"])])
        allow.kubernetesLabels = ["*": LabelValues(["*"])]
        allow.kubernetesGroups = ["{{internal.kubernetes_groups}}"]
        allow.kubernetesUsers = ["{{internal.kubernetes_users}}"]
        return Role(
            name: "access",
            spec: .init(options: .init(maxSessionTTL: "12h0m0s", forwardAgent: true, portForwarding: true), allow: allow))
    }()

    /// `editor`: manages users, roles, tokens, nodes and locks (no SSH access of its own).
    static let presetEditorRole = Role(
        name: "editor",
        spec: .init(
            options: .init(maxSessionTTL: "8h0m0s"),
            allow: .init(rules: [
                Role.Rule(resources: ["user", "role", "token", "node", "lock"], verbs: ["list", "read", "create", "update", "delete"]),
                Role.Rule(resources: ["cert_authority", "cluster_name"], verbs: ["list", "read"]),
            ])))

    /// `auditor`: reads the audit log and session recordings, and may observe live sessions.
    static let presetAuditorRole = Role(
        name: "auditor",
        spec: .init(
            options: .init(maxSessionTTL: "8h0m0s"),
            allow: .init(rules: [
                Role.Rule(resources: ["session"], verbs: ["list", "read", "join"]),
                Role.Rule(resources: ["event"], verbs: ["list", "read"]),
            ])))

    /// The roles created at first start (and again at any start where one was removed).
    public static let presetRoles = [presetAccessRole, presetEditorRole, presetAuditorRole]

    func ensurePresetRoles() async throws {
        for role in Self.presetRoles where (try? await stores.roles.get(role.name)) == nil {
            try? await stores.roles.create(role)
        }
    }

    /// The roles of these names that exist (a role that was removed grants nothing).
    public func existingRoles(_ names: [String]) async -> [Role] {
        var roles: [Role] = []
        for name in names { if let role = try? await stores.roles.get(name) { roles.append(role) } }
        return roles
    }

    // MARK: Users and their tokens

    /// Creates a user and a signup token (1 hour by default, at most 48 hours).
    public func createUser(_ request: AuthAPI.CreateUserRequest, by admin: String) async throws -> AuthAPI.UserTokenInfo {
        var user = request.user
        if user.spec.roles.isEmpty { user.spec.roles = ["access"] }
        if user.logins.isEmpty { user.spec.traits["logins"] = [user.name] }
        user.spec.createdBy = .init(time: clock.now(), user: admin)
        user.spec.status = User.Status()
        try user.validate()
        try await stores.users.create(user)
        let token: AuthAPI.UserTokenInfo
        do {
            token = try await createUserToken(user: user.name, kind: .signup, ttl: request.ttlSeconds)
        } catch {
            // Nothing half-written: a user without a signup token could never log in (seen with the
            // store full: the user's row fitted, the token's did not). A delete needs no new space.
            try? await stores.users.delete(user.name)
            throw error
        }
        try await emit(AuditEventType.userCreate, fields: ["user": .string(admin), "name": .string(user.name), "roles": .string(user.spec.roles.joined(separator: ","))])
        return token
    }

    /// Creates a reset token (8 hours by default): the user sets a new password and TOTP; the
    /// account is unlocked when it is used.
    public func resetUser(_ name: String, ttl: TimeInterval, by admin: String) async throws -> AuthAPI.UserTokenInfo {
        let user = try await stores.users.get(name)
        if let connector = user.spec.createdBy?.connector {
            throw TeleportError.badParameter(
                "\(name) logs in with single sign-on (\(connector.type) connector \(connector.id)) and never has a password; manage it at the identity provider")
        }
        let token = try await createUserToken(user: name, kind: .reset, ttl: ttl)
        try await emit(AuditEventType.userUpdate, fields: ["user": .string(admin), "name": .string(name), "action": "reset"])
        return token
    }

    func createUserToken(user: String, kind: AuthAPI.UserTokenKind, ttl: TimeInterval) async throws -> AuthAPI.UserTokenInfo {
        guard ttl > 0, ttl <= 48 * 3600 else { throw TeleportError.badParameter("--ttl must be between 1s and 48h") }
        let value = SecretHash.randomHex()
        let expires = clock.now().addingTimeInterval(ttl)
        let totpSecret = settings.requiresOTP ? TOTP.generateSecret() : nil
        try await secrets.createToken(value: value, .init(user: user, kind: kind, expires: expires, totpSecret: totpSecret))
        let page = kind == .signup ? "newuser" : "reset"
        let proxy = settings.proxyPublicAddr ?? "<proxyhost>:3080"
        return AuthAPI.UserTokenInfo(
            token: value, user: user, kind: kind, expires: expires, totpSecret: nil, clusterName: clusterName,
            url: "https://\(proxy)/web/\(page)/\(value)")
    }

    /// What the signup/reset page shows: the user and the TOTP secret to enrol.
    public func userToken(_ value: String) async throws -> AuthAPI.UserTokenInfo {
        guard let token = try await secrets.token(value: value), token.expires > clock.now() else {
            throw TeleportError.notFound("this invitation is invalid or has expired; ask your administrator for a new one")
        }
        return AuthAPI.UserTokenInfo(
            token: "", user: token.user, kind: token.kind, expires: token.expires, totpSecret: token.totpSecret,
            clusterName: clusterName)
    }

    /// Sets the password (and TOTP) from a signup or reset form, once.
    public func completeUserToken(_ request: AuthAPI.CompleteUserTokenRequest) async throws {
        guard let token = try await secrets.token(value: request.token), token.expires > clock.now() else {
            throw TeleportError.notFound("this invitation is invalid or has expired; ask your administrator for a new one")
        }
        try Self.checkPasswordPolicy(request.password)
        var totpState: UserSecretsStore.TOTPState?
        if let secret = token.totpSecret {
            guard let code = request.otpCode, let step = TOTP.matchingStep(code: code, secretBase32: secret, at: clock.now(), after: nil)
            else {
                throw TeleportError.badParameter("the one-time code is not valid: enter the current 6-digit code from your authenticator app")
            }
            totpState = .init(secret: secret, lastStep: step)
        }
        guard try await secrets.consumeToken(value: request.token) else {
            throw TeleportError.notFound("this invitation has already been used")
        }
        var user = try await stores.users.get(token.user)
        try await secrets.setPasswordHash(user.name, try await PasswordHashing.hash(request.password, cost: settings.bcryptCost))
        if let totpState {
            try await secrets.setTOTP(user.name, totpState)
            try await secrets.setTOTPAdded(user.name, clock.now())
        }
        try await secrets.setFailures(user.name, [], expires: clock.now())
        if user.spec.status?.isLocked == true {
            user.spec.status = User.Status()
            try await stores.users.upsert(user)
        }
        let ended = try await webSessions.deleteAll(user: user.name)
        try await emit(
            AuditEventType.passwordChange,
            fields: [
                "user": .string(user.name), "kind": .string(token.kind.rawValue), "addr.remote": .string(request.clientAddress ?? ""),
                "web_sessions_ended": .int(ended),
            ])
    }

    static func checkPasswordPolicy(_ password: String) throws {
        guard password.count >= minimumPasswordLength else {
            throw TeleportError.badParameter("the password is too short: use at least \(minimumPasswordLength) characters")
        }
        guard password.utf8.count <= maximumPasswordBytes else {
            throw TeleportError.badParameter("the password is too long: use at most \(maximumPasswordBytes) bytes")
        }
    }

    // MARK: Login

    /// What every refused login answers, whatever the cause (unknown user, wrong password or
    /// code, locked account): the reply must not tell an attacker whether a user exists. The
    /// cause is in the audit log (`user.login` failure) and `tctl users ls` shows locks.
    static let loginDenied = TeleportError.accessDenied(
        "invalid user name, password or one-time code, or the account is locked after too many failed logins (an administrator can unlock it with tctl users reset)")

    /// A refused login (`tsh login` or the web): the `user.login` failure event with `reason` (never
    /// the password), the failure counted, then `error` thrown.
    func refuseLogin(_ fields: [String: JSONValue], reason: String, error: TeleportError) async throws -> Never {
        var fields = fields
        fields["success"] = false
        fields["error"] = .string(reason)
        settings.metrics?.increment(.logins, ["result": "failure"])
        try await emit(AuditEventType.userLoginFailure, fields: fields)
        throw error
    }

    /// Checks a password and TOTP code and issues certificates. Every refusal gets the same
    /// message (``loginDenied``) and, for any user name, costs one bcrypt verification (unknown
    /// users are checked against a decoy hash; locked accounts still check the password); five
    /// failures in 30 minutes lock the account for 30 minutes. The request must prove possession
    /// of both keys (``LoginProof``), checked before the password; a key already certified for
    /// another user is refused. Every attempt emits `user.login` (never with the password).
    public func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse {
        var fields: [String: JSONValue] = [
            "user": .string(request.user), "method": "local", "addr.remote": .string(request.clientAddress ?? ""),
        ]
        func fail(_ reason: String, _ error: TeleportError) async throws -> Never {
            try await refuseLogin(fields, reason: reason, error: error)
        }
        if !settings.localAuth { try await fail("local_auth is false", Self.localAuthDisabled) }
        let keys: ProvenKeys
        do {
            keys = try proveKeys(
                sshPublicKey: request.sshPublicKey, tlsPublicKeyPEM: request.tlsPublicKeyPEM, user: request.user, proof: request.keyProof,
                purpose: .login)
        } catch let error as TeleportError {
            try await fail(error.message, error)
        }
        let user: User
        do {
            user = try await checkCredentials(
                user: request.user, password: request.password, otpCode: request.otpCode, clientAddress: request.clientAddress
            ) { user in
                // The key must not be certified for someone else (checked before the code is spent).
                try await checkKeyBinding(keys.ssh, user: user.name)
            }
        } catch let refusal as LoginRefusal {
            try await fail(refusal.reason, refusal.error)
        }
        // The shortest max_session_ttl of the user's roles caps the certificate (roles that do not
        // exist grant nothing and limit nothing).
        let roles = await existingRoles(user.spec.roles)
        let cap = AccessChecker(roles: roles, traits: [:]).maxSessionTTL(fallback: settings.maxSessionTTL)
        let response: AuthAPI.LoginResponse
        do {
            response = try await issueUserCertificates(user: user, keys: keys, ttl: min(request.ttlSeconds > 0 ? request.ttlSeconds : cap, cap))
        } catch let error as TeleportError where error.code == .alreadyExists || error.code == .accessDenied {
            try await fail(error.message, error)
        }
        fields["success"] = true
        settings.metrics?.increment(.logins, ["result": "success"])
        try await emit(AuditEventType.userLogin, fields: fields)
        return response
    }

    /// Public keys whose private keys the requester proved to hold (``LoginProof``); the only
    /// way to ask ``issueUserCertificates(user:keys:ttl:)`` for certificates.
    struct ProvenKeys {
        /// The SSH key to certify.
        let ssh: SSHPublicKey
        /// The TLS key to certify.
        let tls: P256.Signing.PublicKey
        /// The user the proof names.
        let user: String
    }

    /// Parses the two public keys of a request and verifies its proof of possession for `user`.
    func proveKeys(
        sshPublicKey: String, tlsPublicKeyPEM: String, user: String, proof: AuthAPI.KeyProof?, purpose: LoginProof.Purpose
    ) throws -> ProvenKeys {
        let subjectKey: SSHPublicKey
        do {
            subjectKey = try SSHPublicKey(authorizedKeyLine: sshPublicKey)
        } catch {
            throw TeleportError.badParameter("ssh_public_key is not an SSH public key line")
        }
        let tlsKey: P256.Signing.PublicKey
        do {
            tlsKey = try P256.Signing.PublicKey(pemRepresentation: tlsPublicKeyPEM)
        } catch {
            throw TeleportError.badParameter("tls_public_key is not an ECDSA P-256 public key in PEM form")
        }
        try LoginProof.verify(proof, purpose: purpose, user: user, sshPublicKey: subjectKey, tlsPublicKey: tlsKey, now: clock.now())
        return ProvenKeys(ssh: subjectKey, tls: tlsKey, user: user)
    }

    /// Issues a user's SSH and X.509 certificates for keys the requester proved to hold.
    ///
    /// - Throws: ``TeleportError`` `accessDenied` when a lock applies, or when the key already has a
    ///   current certificate for another user (a key is bound to one user until that certificate
    ///   expires).
    func issueUserCertificates(user: User, keys: ProvenKeys, ttl: TimeInterval) async throws -> AuthAPI.LoginResponse {
        let now = clock.now()
        guard keys.user == user.name else {
            throw TeleportError.accessDenied("the proof of key possession names \(keys.user), not \(user.name)")
        }
        if let lock = try await locks().first(where: { $0.applies(user: user.name, login: nil, node: [], at: now) }) {
            throw TeleportError.accessDenied(lock.refusal)
        }
        // The key's binding to one user is checked where the certificate is recorded (one
        // conditional write, before anything is returned): no separate read first.
        let validBefore = now.addingTimeInterval(ttl)
        let subjectKey = keys.ssh
        let tlsKey = keys.tls
        // The certificate lists the logins the user's roles allow (templates expanded); a user
        // whose roles allow none still gets certificates, with a placeholder principal that no
        // host has, and is told so.
        let traits = AccessChecker.templateTraits(user.spec.traits)
        let allowed = AccessChecker(roles: await existingRoles(user.spec.roles), traits: traits).allowedLogins
        let logins = allowed.isEmpty ? ["-teleport-nologin-" + UUID().uuidString.lowercased()] : allowed
        let material = try await userIssuingMaterial()
        var extensions = SSHCertificate.standardUserExtensions
        let roles: [String: JSONValue] = ["version": "v1", "roles": .array(user.spec.roles.map { .string($0) })]
        extensions["teleport-roles"] = String(decoding: try ResourceCodec.json(roles), as: UTF8.self)
        extensions["teleport-route-to-cluster"] = clusterName
        extensions["teleport-traits"] = String(decoding: try ResourceCodec.json(user.spec.traits), as: UTF8.self)
        let sshCertificate = try SSHCertificate.sign(
            publicKey: subjectKey, type: .user, serial: UInt64.random(in: 1...UInt64.max), keyID: user.name, validPrincipals: logins,
            validAfter: now.addingTimeInterval(-60), validBefore: validBefore, extensions: extensions, caKey: material.sshSigningKey)
        try await recordUserCertificate(sshCertificate)
        let identity = X509Identity(username: user.name, roles: user.spec.roles, logins: allowed, clusterName: clusterName)
        let tlsCertificate = try await tlsAuthority(.user).issue(publicKey: tlsKey, identity: identity, validity: ttl, clock: clock)
        settings.metrics?.increment(.certificatesIssued, ["type": "user"])
        return AuthAPI.LoginResponse(
            username: user.name, clusterName: clusterName, sshCertificate: sshCertificate.authorizedKeyLine(comment: user.name),
            tlsCertificatePEM: try tlsCertificate.pemText(), tlsCAPEMs: material.caPEMs, knownHosts: material.knownHosts,
            userCAKeys: material.userCAKeys, logins: allowed, roles: user.spec.roles, validBefore: validBefore)
    }

    /// `tctl auth sign --host`: an SSH host certificate from the host CA.
    public func signHost(_ request: AuthAPI.SignHostRequest) async throws -> AuthAPI.SignHostResponse {
        guard !request.principals.isEmpty, request.principals.allSatisfy({ !$0.isEmpty }) else {
            throw TeleportError.badParameter("--host needs at least one host name")
        }
        guard request.ttlSeconds > 0, request.ttlSeconds <= 10 * 365 * 86400 else {
            throw TeleportError.badParameter("--ttl must be positive and at most 10 years")
        }
        let subject = try SSHPublicKey(authorizedKeyLine: request.sshPublicKey)
        let hostCA = try await certAuthority(.host)
        guard let caPEM = hostCA.spec.activeKeys.ssh.first?.privateKey,
            case .ed25519(let caKey) = try OpenSSHPrivateKey(pemRepresentation: caPEM).key
        else { throw TeleportError.internalError("the host CA has no Ed25519 signing key") }
        let now = clock.now()
        let certificate = try SSHCertificate.sign(
            publicKey: subject, type: .host, serial: UInt64.random(in: 1...UInt64.max), keyID: request.principals[0],
            validPrincipals: request.principals, validAfter: now.addingTimeInterval(-60),
            validBefore: now.addingTimeInterval(request.ttlSeconds), caKey: caKey)
        settings.metrics?.increment(.certificatesIssued, ["type": "host"])
        // Signing vouches for this key under these names: record it with the cluster's host keys so
        // that clients (which check host keys against the cluster, not certificates) accept it for
        // an OpenSSH node registered under the first name. A new key for the name replaces the old.
        let safeName = String(request.principals[0].map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
        try await recordHostKey(hostID: "openssh-\(safeName)", nodeName: request.principals[0], publicKey: request.sshPublicKey)
        return AuthAPI.SignHostResponse(sshCertificate: certificate.authorizedKeyLine(comment: request.principals[0]))
    }
}

extension AuthServer {
    /// Why a login was refused: `reason` for the audit log, `error` for the client.
    struct LoginRefusal: Error {
        let reason: String
        let error: TeleportError
    }

    /// Checks a local user's password and TOTP code, the same for `tsh login` and the web login:
    /// every refusal costs one bcrypt verification (unknown users are checked against a decoy
    /// hash; locked accounts still check the password); five failures in 30 minutes lock the
    /// account for 30 minutes (audited as `user.locked`). `beforeSpendingCode` runs after the
    /// credentials matched and before the TOTP step is used up; a ``TeleportError`` it throws
    /// refuses the login. On success the failures are cleared and a lock is lifted.
    ///
    /// - Throws: ``LoginRefusal``; the caller audits it.
    func checkCredentials(
        user name: String, password: String, otpCode: String?, clientAddress: String?,
        beforeSpendingCode: (User) async throws -> Void = { _ in }
    ) async throws -> User {
        let now = clock.now()
        let denied = Self.loginDenied
        guard var user = try? await stores.users.get(name), let hash = try await secrets.passwordHash(name) else {
            _ = await PasswordHashing.verify(password, hash: Self.decoyHash)
            throw LoginRefusal(reason: "unknown user or no password set", error: denied)
        }
        let passwordOK = password.utf8.count <= Self.maximumPasswordBytes ? await PasswordHashing.verify(password, hash: hash) : false
        if let status = user.spec.status, status.isLocked, let until = status.lockExpires, until > now {
            // Checked after the password so that a locked account answers as slowly as any other.
            throw LoginRefusal(reason: "account locked until \(RFC3339.format(until))", error: denied)
        }
        let totpState = try await secrets.totp(user.name)
        var step: Int64?
        if settings.requiresOTP {
            if let state = totpState, let code = otpCode {
                step = TOTP.matchingStep(code: code, secretBase32: state.secret, at: now, after: state.lastStep)
            }
        }
        guard passwordOK, !settings.requiresOTP || step != nil else {
            var failures = try await secrets.failures(user.name).filter { $0 > now.addingTimeInterval(-Self.lockoutWindow) }
            failures.append(now)
            try await secrets.setFailures(user.name, failures, expires: now.addingTimeInterval(Self.lockoutWindow))
            if failures.count >= Self.maxFailures {
                user.spec.status = User.Status(isLocked: true, lockedTime: now, lockExpires: now.addingTimeInterval(Self.lockoutWindow))
                try await stores.users.upsert(user)
                try await emit(AuditEventType.userLocked, fields: ["user": .string(user.name), "addr.remote": .string(clientAddress ?? "")])
            }
            // Only after the password matched: a code that was valid but is used up (the signup's
            // own code, within its 30 s) gets words that tell the user to wait for the next one.
            if passwordOK, let state = totpState, let lastStep = state.lastStep, let code = otpCode,
                let used = TOTP.matchingStep(code: code, secretBase32: state.secret, at: now, after: nil), used <= lastStep
            {
                throw LoginRefusal(
                    reason: "one-time code already used",
                    error: TeleportError.accessDenied(
                        "this one-time code was already used; wait for the next one your app shows (a new one every 30 seconds) and log in again"))
            }
            throw LoginRefusal(reason: passwordOK ? "invalid one-time code" : "invalid password", error: denied)
        }
        do {
            try await beforeSpendingCode(user)
        } catch let error as TeleportError {
            throw LoginRefusal(reason: error.message, error: error)
        }
        if let step, var state = totpState {
            state.lastStep = step
            try await secrets.setTOTP(user.name, state)
        }
        try await secrets.setFailures(user.name, [], expires: now)
        if user.spec.status?.isLocked == true {
            user.spec.status = User.Status()
            try await stores.users.upsert(user)
        }
        return user
    }
}
