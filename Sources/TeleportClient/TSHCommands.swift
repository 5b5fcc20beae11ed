import Foundation
import TeleportAPI
import TeleportCrypto

/// The work behind each `tsh` command; `tsh` itself only parses flags and prints.
public enum TSHCommands {
    /// What a command prints on standard output and its exit status.
    public struct Outcome: Sendable, Equatable {
        /// Standard output.
        public var output: String
        /// The exit status.
        public var exitCode: Int32

        /// Creates an outcome.
        public init(output: String, exitCode: Int32 = 0) {
            self.output = output
            self.exitCode = exitCode
        }
    }

    // MARK: login

    /// `tsh login`: asks the proxy how to log in, prompts for the password (and the OTP code),
    /// generates fresh keys, has the proxy certify them, stores them in a profile (or an identity
    /// file with `--out`), loads them into the SSH agent, and prints the status.
    ///
    /// - Throws: ``TeleportError`` with a one-line message: the server's (wrong password), the
    ///   transport's (untrusted certificate, unreachable proxy), or a bad flag.
    public static func login(_ options: ClientOptions, _ login: LoginOptions, context: ClientContext) async throws -> Outcome {
        let store = context.store
        let current = try? store.currentProfileName().flatMap { try store.loadProfile($0) }
        guard let proxyText = options.proxyText(context.environment) ?? current?.webProxyAddress.hostPort else {
            throw TeleportError.badParameter("the proxy is not set: use --proxy=HOST[:PORT] (or TELEPORT_PROXY)")
        }
        let address = try ProxyAddress(parsing: proxyText)
        let ttl = try login.ttlSeconds()
        let web = WebClient(transport: try context.transport(address, options.insecure), address: address)
        let ping = try await web.ping()
        if let connector = try SSOLogin.connector(asked: login.auth, ping: ping.auth) {
            let keys = ClientKeyPair(comment: connector.name)
            let reply = try await SSOLogin.run(connector: connector, keys: keys, ttl: ttl, web: web, login: login, context: context)
            return try await finishLogin(options, login, context: context, address: address, ping: ping, keys: keys, reply: reply)
        }
        guard let user = options.userText(context.environment) ?? context.localUser else {
            throw TeleportError.badParameter("cannot tell who you are: use --user=NAME (or TELEPORT_USER)")
        }
        try ProfileStore.checkName(user, what: "user name")
        if ping.auth.localAuth == false {
            throw TeleportError.accessDenied(
                "this cluster does not accept passwords (local_auth: false); log in with single sign-on: tsh login --auth=CONNECTOR")
        }
        let password = try context.prompter.readLine(prompt: "Enter password for Teleport user \(user):", echo: false)
        var otpCode: String?
        switch ping.auth.secondFactor.lowercased() {
        case "otp", "on", "optional":
            let code = try context.prompter.readLine(prompt: "Enter your OTP token:", echo: true)
                .trimmingCharacters(in: .whitespaces)
            otpCode = code.isEmpty ? nil : code
        default:
            break
        }

        let keys = ClientKeyPair(comment: user)
        let reply = try await web.login(
            AuthAPI.LoginRequest(
                user: user, password: password, otpCode: otpCode, sshPublicKey: keys.sshPublicKeyLine,
                tlsPublicKeyPEM: keys.tlsPublicKeyPEM, ttlSeconds: ttl, keyProof: try keys.proof(for: user, now: context.clock.now())))
        return try await finishLogin(options, login, context: context, address: address, ping: ping, keys: keys, reply: reply)
    }

    /// Stores what a login got (profile or identity file), loads the key into the agent and prints
    /// the status; the same for password and single sign-on logins.
    static func finishLogin(
        _ options: ClientOptions, _ login: LoginOptions, context: ClientContext, address: ProxyAddress, ping: WebAPI.PingResponse,
        keys: ClientKeyPair, reply: AuthAPI.LoginResponse
    ) async throws -> Outcome {
        let store = context.store
        let user = reply.username
        try ProfileStore.checkName(user, what: "user name")
        let key = ClientKey(keys: keys, login: reply)
        let facts: CertificateFacts
        do {
            facts = try CertificateFacts(key: key) { part in "the proxy's reply (\(part))" }
        } catch let error as TeleportError {
            throw TeleportError.connectionProblem("the proxy at \(address) returned unusable certificates: \(error.message)")
        }

        if let out = login.out {
            try IdentityFile(key).write(path: out)
            return Outcome(output: "\nThe certificate has been written to \(out)\n")
        }

        let profile = Profile(
            webProxyAddress: address, sshProxyAddress: ping.proxy.ssh.publicAddr.isEmpty ? nil : ping.proxy.ssh.publicAddr,
            user: user, cluster: ping.clusterName, insecure: options.insecure)
        let previousCertificate = try? String(
            contentsOf: store.keyPaths(profile: profile.name, user: user).sshCertificate, encoding: .utf8)
        try store.save(profile, key: key)

        if let agent = agentFor(login.addKeysToAgent, context: context) {
            if let previousCertificate, let old = try? SSHCertificate(authorizedKeyLine: previousCertificate) {
                _ = try? agent.remove(blob: old.wireBytes)
            }
            do {
                try agent.add(
                    key: try key.sshPrivateKey(), certificate: try key.parsedSSHCertificate(),
                    comment: "teleport:\(user)@\(profile.name)", now: context.clock.now())
            } catch let error as TeleportError {
                context.warn("WARNING: the key was not added to the SSH agent: \(error.message)")
            }
        }
        return Outcome(output: StatusReport(profileURL: address.url, facts: facts).text(now: context.clock.now()))
    }

    static func agentFor(_ mode: LoginOptions.AgentMode, context: ClientContext) -> SSHAgentClient? {
        switch mode {
        case .no: return nil
        case .auto: return context.agent
        case .yes:
            if context.agent == nil { context.warn("WARNING: no SSH agent is running (SSH_AUTH_SOCK is not set); the key was not added to one") }
            return context.agent
        }
    }

    // MARK: status

    /// `tsh status`: the current profile (or the identity file of `-i`), read from its
    /// certificates. Exit status 1 with "Not logged in." when there is none.
    public static func status(_ options: ClientOptions, context: ClientContext) throws -> Outcome {
        if let path = options.identityFile {
            let identity = try IdentityFile.load(path: path)
            let facts = try CertificateFacts(key: identity.clientKey) { part in "the identity file \(path) (\(part))" }
            let url = try options.proxyText(context.environment).map { try ProxyAddress(parsing: $0).url } ?? "identity file \(path)"
            return Outcome(output: StatusReport(profileURL: url, facts: facts).text(now: context.clock.now()))
        }
        let store = context.store
        guard let name = try store.currentProfileName() else {
            return Outcome(output: "Not logged in.\n", exitCode: 1)
        }
        let profile = try store.loadProfile(name)
        let loaded = try store.loadFacts(profile)
        return Outcome(
            output: StatusReport(profileURL: profile.webProxyAddress.url, facts: loaded.facts).text(now: context.clock.now()))
    }

    // MARK: logout

    /// `tsh logout`: removes the current profile (or, with `--proxy`, that proxy's profile; with
    /// `--user` too, only that user's keys) and its keys from the SSH agent.
    public static func logout(_ options: ClientOptions, context: ClientContext) throws -> Outcome {
        if options.identityFile != nil {
            throw TeleportError.badParameter("logout removes profiles; an identity file (-i) is not one: delete the file instead")
        }
        let store = context.store
        let name: String
        var user = options.userText(context.environment)
        if let proxy = options.proxyText(context.environment) {
            name = try ProxyAddress(parsing: proxy).profileName
        } else if let current = try? store.currentProfileName() {
            name = current
            user = nil
        } else if (try? store.currentProfileName()) == nil, FileManager.default.fileExists(atPath: store.currentProfileURL.path) {
            // current-profile exists but is unreadable: remove it so the next login starts clean.
            try? FileManager.default.removeItem(at: store.currentProfileURL)
            return Outcome(output: "Removed the unreadable \(store.currentProfileURL.path).\n")
        } else {
            return Outcome(output: "Not logged in.\n")
        }
        let removal = try store.remove(profile: name, user: user)
        if let agent = context.agent {
            for line in removal.sshCertificates {
                guard let certificate = try? SSHCertificate(authorizedKeyLine: line) else { continue }
                do {
                    try agent.remove(blob: certificate.wireBytes)
                } catch let error as TeleportError {
                    context.warn("WARNING: the key was not removed from the SSH agent: \(error.message)")
                }
            }
        }
        if removal.users.isEmpty {
            return Outcome(output: user.map { "\($0) is not logged in to \(name).\n" } ?? "Logged out of \(name).\n")
        }
        return Outcome(output: "Logged out \(removal.users.joined(separator: ", ")) from \(name).\n")
    }
}
