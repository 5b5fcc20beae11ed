import Crypto
import Foundation
import Synchronization
import TeleportAPI
import TeleportClient
import TeleportCrypto
import TeleportTestSupport
import Testing
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// A cluster's two CAs in memory, signing logins the way the auth service does: an SSH user
/// certificate (principals = logins) and an X.509 certificate carrying the identity.
struct FakeCluster: Sendable {
    let name: String
    let sshCA = Curve25519.Signing.PrivateKey()
    let tlsCA: TLSAuthority
    let hostCA: TLSAuthority

    init(name: String = "unit.example") throws {
        self.name = name
        tlsCA = try TLSAuthority.generate(clusterName: name, type: "user", clock: SystemClock())
        hostCA = try TLSAuthority.generate(clusterName: name, type: "host", clock: SystemClock())
    }

    /// Certificates for the keys of `request`, valid from `now` for `ttl` seconds.
    func login(
        user: String, sshPublicKey: String, tlsPublicKeyPEM: String, roles: [String] = ["access"], logins: [String],
        ttl: TimeInterval, clock: any WallClock = SystemClock()
    ) throws -> AuthAPI.LoginResponse {
        let now = clock.now()
        let certificate = try SSHCertificate.sign(
            publicKey: try SSHPublicKey(authorizedKeyLine: sshPublicKey), type: .user, keyID: user, validPrincipals: logins,
            validAfter: now.addingTimeInterval(-60), validBefore: now.addingTimeInterval(ttl),
            extensions: SSHCertificate.standardUserExtensions, caKey: sshCA)
        let leaf = try tlsCA.issue(
            publicKey: try P256.Signing.PublicKey(pemRepresentation: tlsPublicKeyPEM),
            identity: X509Identity(username: user, roles: roles, logins: logins, clusterName: name), validity: ttl, clock: clock)
        let hostKey = SSHPublicKey.ed25519(Curve25519.Signing.PrivateKey().publicKey)
        return AuthAPI.LoginResponse(
            username: user, clusterName: name, sshCertificate: certificate.authorizedKeyLine(), tlsCertificatePEM: try leaf.pemText(),
            tlsCAPEMs: [try tlsCA.certificatePEM, try hostCA.certificatePEM],
            knownHosts: ["@cert-authority *.\(name),\(name) \(hostKey.authorizedKeyLine()) type=host"],
            userCAKeys: [SSHPublicKey.ed25519(sshCA.publicKey).authorizedKeyLine()], logins: logins, roles: roles,
            validBefore: now.addingTimeInterval(ttl))
    }

    /// A complete ``ClientKey`` for `user`, as a login would produce.
    func clientKey(user: String = "joe", logins: [String] = ["joe", "root"], ttl: TimeInterval = 3600, clock: any WallClock = SystemClock())
        throws -> ClientKey
    {
        let keys = ClientKeyPair(comment: user)
        let reply = try login(
            user: user, sshPublicKey: keys.sshPublicKeyLine, tlsPublicKeyPEM: keys.tlsPublicKeyPEM, logins: logins, ttl: ttl, clock: clock)
        return ClientKey(keys: keys, login: reply)
    }
}

/// The proxy's `/webapi/ping` and `/webapi/ssh/certs` in memory: one user with a password and a
/// fixed OTP code, answering as the real proxy does (JSON, `ErrorResponse` on failure).
final class FakeProxy: ProxyTransport {
    let cluster: FakeCluster
    let secondFactor: String
    let users: [String: (password: String, logins: [String])]
    let otpCode = "123456"
    let clock: any WallClock
    /// Every login request received.
    let requests = Mutex<[AuthAPI.LoginRequest]>([])

    init(cluster: FakeCluster, secondFactor: String = "otp", users: [String: (password: String, logins: [String])], clock: any WallClock) {
        self.cluster = cluster
        self.secondFactor = secondFactor
        self.users = users
        self.clock = clock
    }

    func get(_ path: String) async throws -> HTTPReply {
        guard path == "/webapi/ping" else { return HTTPReply(status: 404, body: Data("not found".utf8)) }
        let ping: [String: JSONValue] = [
            "cluster_name": .string(cluster.name), "server_version": .string("test"),
            "auth": .object(["type": .string("local"), "second_factor": .string(secondFactor)]),
            "proxy": .object(["ssh": .object(["listen_addr": .string("0.0.0.0:3023"), "public_addr": .string("proxy.test:3023")])]),
        ]
        return HTTPReply(status: 200, body: try ResourceCodec.json(ping))
    }

    func post(_ path: String, body: Data) async throws -> HTTPReply {
        guard path == WebAPI.loginPath else { return HTTPReply(status: 404, body: Data()) }
        let request = try ResourceCodec.jsonDecoder().decode(AuthAPI.LoginRequest.self, from: body)
        requests.withLock { $0.append(request) }
        guard let user = users[request.user], user.password == request.password,
            secondFactor == "off" || request.otpCode == otpCode
        else {
            return HTTPReply(
                status: 403,
                body: try ResourceCodec.json(AuthAPI.ErrorResponse(code: "access_denied", message: "invalid user name, password or one-time code")))
        }
        let reply = try cluster.login(
            user: request.user, sshPublicKey: request.sshPublicKey, tlsPublicKeyPEM: request.tlsPublicKeyPEM, logins: user.logins,
            ttl: min(request.ttlSeconds, 12 * 3600), clock: clock)
        return HTTPReply(status: 200, body: try ResourceCodec.json(reply))
    }
}

/// Answers prompts from a list, recording the prompts.
final class CannedPrompter: Prompter {
    let answers: Mutex<[String]>
    let prompts = Mutex<[(prompt: String, echo: Bool)]>([])

    init(_ answers: [String]) { self.answers = Mutex(answers) }

    func readLine(prompt: String, echo: Bool) throws -> String {
        prompts.withLock { $0.append((prompt, echo)) }
        return try answers.withLock { answers in
            guard !answers.isEmpty else { throw TeleportError.badParameter("no answer to \(prompt)") }
            return answers.removeFirst()
        }
    }
}

/// Collects warnings.
final class WarningLog: Sendable {
    let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

/// A context on a temporary profile directory with the fakes.
func makeContext(
    home: URL, proxy: FakeProxy, prompter: CannedPrompter, agent: SSHAgentClient? = nil, clock: any WallClock, warnings: WarningLog = WarningLog()
) -> ClientContext {
    ClientContext(
        environment: [:], store: ProfileStore(home: home), prompter: prompter, transport: { _, _ in proxy }, agent: agent, clock: clock,
        warn: { warnings.append($0) }, localUser: "localperson")
}

/// A real OpenSSH `ssh-agent` on a private socket (`ssh-agent -a SOCKET -D`), stopped by PID.
final class AgentFixture {
    let directory: URL
    let socketPath: String
    let pid: pid_t

    init() async throws {
        directory = try TestSupport.makeTemporaryDirectory(prefix: "agent")
        socketPath = directory.appendingPathComponent("agent.sock").path
        pid = try TestSupport.spawnDaemon("/usr/bin/ssh-agent", ["-a", socketPath, "-D"], logPath: directory.appendingPathComponent("agent.log").path)
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            try #require(ContinuousClock.now < deadline, "ssh-agent did not create \(socketPath)")
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    var client: SSHAgentClient { SSHAgentClient(socketPath: socketPath) }

    /// `ssh-add ARGS` against this agent.
    func sshAdd(_ arguments: [String]) async throws -> CommandResult {
        try await TestSupport.run("/usr/bin/ssh-add", arguments, environment: ["SSH_AUTH_SOCK": socketPath])
    }

    func stop() async {
        await TestSupport.stopDaemon(pid)
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` with an agent, always stopping it.
func withAgent<T>(_ body: (AgentFixture) async throws -> T) async throws -> T {
    let agent = try await AgentFixture()
    do {
        let result = try await body(agent)
        await agent.stop()
        return result
    } catch {
        await agent.stop()
        throw error
    }
}

/// The permission bits of `url`.
func mode(_ url: URL) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int ?? -1) & 0o777
}
