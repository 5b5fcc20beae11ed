import Crypto
import Foundation
import Synchronization
import TeleportAPI
import TeleportClient
import TeleportCrypto
import TeleportTestSupport
import Testing

/// `tsh login`, `status` and `logout` as library calls, against an in-memory proxy and a manual clock.
@Suite("tsh commands")
struct LoginCommandTests {
    let home: URL
    let cluster: FakeCluster
    let clock = ManualClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))

    init() throws {
        home = try TestSupport.makeTemporaryDirectory(prefix: "tsh-cmd").appendingPathComponent(".tsh")
        cluster = try FakeCluster()
    }

    func proxy(secondFactor: String = "otp") -> FakeProxy {
        FakeProxy(cluster: cluster, secondFactor: secondFactor, users: ["joe": ("secret", ["joe", "root"])], clock: clock)
    }

    let options = ClientOptions(proxy: "proxy.example.com", user: "joe")

    @Test("login prompts for the password (no echo) and the OTP code, stores the profile and prints the status")
    func login() async throws {
        let proxy = proxy()
        let prompter = CannedPrompter(["secret", "123456"])
        let context = makeContext(home: home, proxy: proxy, prompter: prompter, clock: clock)
        let outcome = try await TSHCommands.login(options, LoginOptions(ttl: "8h"), context: context)
        #expect(outcome.exitCode == 0)
        let prompts = prompter.prompts.withLock { $0 }
        #expect(prompts.map(\.prompt) == ["Enter password for Teleport user joe:", "Enter your OTP token:"])
        #expect(prompts.map(\.echo) == [false, true])

        let request = try #require(proxy.requests.withLock { $0.first })
        #expect(request.user == "joe" && request.password == "secret" && request.otpCode == "123456")
        #expect(request.ttlSeconds == 8 * 3600)
        #expect(request.sshPublicKey.hasPrefix("ssh-ed25519 "))
        #expect(request.tlsPublicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        // The request proves possession of both keys, for this user, as the auth service requires.
        let tlsPublicKey = try P256.Signing.PublicKey(pemRepresentation: request.tlsPublicKeyPEM)
        let sshPublicKey = try SSHPublicKey(authorizedKeyLine: request.sshPublicKey)
        try LoginProof.verify(
            request.keyProof, purpose: .login, user: "joe", sshPublicKey: sshPublicKey, tlsPublicKey: tlsPublicKey, now: clock.now())
        #expect(throws: TeleportError.self) {
            try LoginProof.verify(
                request.keyProof, purpose: .login, user: "mallory", sshPublicKey: sshPublicKey, tlsPublicKey: tlsPublicKey, now: clock.now())
        }

        let expected = """
            > Profile URL:        https://proxy.example.com:3080
              Logged in as:       joe
              Cluster:            unit.example
              Roles:              access
              Logins:             joe, root
              Valid until:        \(RFC3339.format(Date(timeIntervalSince1970: (clock.now().timeIntervalSince1970 + 8 * 3600).rounded(.down)))) [8h0m left]

            """
        #expect(outcome.output == expected)

        let store = ProfileStore(home: home)
        let profile = try store.loadProfile("proxy.example.com")
        #expect(profile.user == "joe" && profile.cluster == "unit.example" && profile.sshProxyAddress == "proxy.test:3023")
        // The keys stored are the ones the request carried.
        let key = try store.loadKey(profile)
        #expect(try key.sshPublicKeyLine() == request.sshPublicKey)

        clock.advance(by: 3600 + 61)
        let status = try TSHCommands.status(ClientOptions(), context: context)
        #expect(status.output.contains("[6h58m left]"), "\(status.output)")
        clock.advance(by: 8 * 3600)
        #expect(try TSHCommands.status(ClientOptions(), context: context).output.contains("[EXPIRED]"))
    }

    @Test("no OTP prompt when the cluster has no second factor; defaults: 12h, the local user")
    func noSecondFactor() async throws {
        let proxy = FakeProxy(cluster: cluster, secondFactor: "off", users: ["localperson": ("pw", ["localperson"])], clock: clock)
        let prompter = CannedPrompter(["pw"])
        let context = makeContext(home: home, proxy: proxy, prompter: prompter, clock: clock)
        _ = try await TSHCommands.login(ClientOptions(proxy: "proxy.example.com:443"), LoginOptions(), context: context)
        #expect(prompter.prompts.withLock { $0.map(\.prompt) } == ["Enter password for Teleport user localperson:"])
        let request = try #require(proxy.requests.withLock { $0.first })
        #expect(request.otpCode == nil && request.ttlSeconds == 12 * 3600)
        #expect(try ProfileStore(home: home).loadProfile("proxy.example.com").webProxyAddress.port == 443)
    }

    @Test("TELEPORT_PROXY and TELEPORT_USER stand in for the flags; the flags win")
    func environment() async throws {
        var context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456"]), clock: clock)
        context.environment = ["TELEPORT_PROXY": "env.example.com:3080", "TELEPORT_USER": "joe"]
        _ = try await TSHCommands.login(ClientOptions(), LoginOptions(), context: context)
        #expect(try ProfileStore(home: home).currentProfileName() == "env.example.com")
        context.prompter = CannedPrompter(["secret", "123456"])
        _ = try await TSHCommands.login(ClientOptions(proxy: "flag.example.com"), LoginOptions(), context: context)
        #expect(try ProfileStore(home: home).currentProfileName() == "flag.example.com")
    }

    @Test("a wrong password is the server's message; nothing is stored")
    func wrongPassword() async throws {
        let context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter(["wrong", "123456"]), clock: clock)
        let error = try await #require(throws: TeleportError.self) {
            try await TSHCommands.login(options, LoginOptions(), context: context)
        }
        #expect(error.message == "invalid user name, password or one-time code")
        #expect(error.code == .accessDenied)
        let stored = (try? FileManager.default.contentsOfDirectory(atPath: home.path)) ?? []
        #expect(stored.isEmpty, "\(stored)")
    }

    @Test("bad flags: no proxy, a bad TTL, a user that cannot be a file name")
    func badFlags() async throws {
        let context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter([]), clock: clock)
        let noProxy = try await #require(throws: TeleportError.self) {
            try await TSHCommands.login(ClientOptions(user: "joe"), LoginOptions(), context: context)
        }
        #expect(noProxy.message.contains("--proxy"))
        let ttl = try await #require(throws: TeleportError.self) {
            try await TSHCommands.login(options, LoginOptions(ttl: "soon"), context: context)
        }
        #expect(ttl.message.contains("--ttl"))
        await #expect(throws: TeleportError.self) {
            try await TSHCommands.login(ClientOptions(proxy: "p", user: "../etc"), LoginOptions(), context: context)
        }
    }

    @Test("a proxy that returns certificates for another key is refused")
    func foreignCertificates() async throws {
        struct Swapping: ProxyTransport {
            let inner: FakeProxy
            let cluster: FakeCluster
            func get(_ path: String) async throws -> HTTPReply { try await inner.get(path) }
            func post(_ path: String, body: Data) async throws -> HTTPReply {
                let other = ClientKeyPair()
                let reply = try cluster.login(
                    user: "joe", sshPublicKey: other.sshPublicKeyLine, tlsPublicKeyPEM: other.tlsPublicKeyPEM, logins: ["joe"], ttl: 60)
                return HTTPReply(status: 200, body: try ResourceCodec.json(reply))
            }
        }
        var context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456"]), clock: clock)
        let swapping = Swapping(inner: proxy(), cluster: cluster)
        context.transport = { _, _ in swapping }
        let error = try await #require(throws: TeleportError.self) {
            try await TSHCommands.login(options, LoginOptions(), context: context)
        }
        #expect(error.message.contains("unusable certificates"), "\(error.message)")
    }

    @Test("login --out writes an identity file and no profile; status -i reads it")
    func identityOut() async throws {
        let directory = try TestSupport.makeTemporaryDirectory(prefix: "tsh-out")
        let path = directory.appendingPathComponent("joe.pem").path
        let context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456"]), clock: clock)
        let outcome = try await TSHCommands.login(options, LoginOptions(out: path), context: context)
        #expect(outcome.output.contains(path))
        #expect(try ProfileStore(home: home).currentProfileName() == nil)
        let status = try TSHCommands.status(ClientOptions(proxy: "proxy.example.com", identityFile: path), context: context)
        #expect(status.output.hasPrefix("> Profile URL:        https://proxy.example.com:3080\n"), "\(status.output)")
        #expect(status.output.contains("Logins:             joe, root"))
        let withoutProxy = try TSHCommands.status(ClientOptions(identityFile: path), context: context)
        #expect(withoutProxy.output.hasPrefix("> Profile URL:        identity file \(path)\n"), "\(withoutProxy.output)")
        #expect(throws: TeleportError.self) { try TSHCommands.logout(ClientOptions(identityFile: path), context: context) }
    }

    @Test("status with no profile: Not logged in., exit 1; logout then too")
    func notLoggedIn() throws {
        let context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter([]), clock: clock)
        #expect(try TSHCommands.status(ClientOptions(), context: context) == .init(output: "Not logged in.\n", exitCode: 1))
        #expect(try TSHCommands.logout(ClientOptions(), context: context).output == "Not logged in.\n")
    }

    @Test("logout removes the current profile; with --proxy and --user only that user's keys")
    func logout() async throws {
        let proxy = FakeProxy(cluster: cluster, users: ["joe": ("secret", ["joe"]), "ann": ("pw", ["ann"])], clock: clock)
        var context = makeContext(home: home, proxy: proxy, prompter: CannedPrompter(["secret", "123456", "pw", "123456"]), clock: clock)
        _ = try await TSHCommands.login(options, LoginOptions(), context: context)
        _ = try await TSHCommands.login(ClientOptions(proxy: "proxy.example.com", user: "ann"), LoginOptions(), context: context)
        let store = ProfileStore(home: home)
        #expect(try store.loadProfile("proxy.example.com").user == "ann")

        context.environment = [:]
        let joe = try TSHCommands.logout(ClientOptions(proxy: "proxy.example.com", user: "joe"), context: context)
        #expect(joe.output == "Logged out joe from proxy.example.com.\n")
        #expect(try TSHCommands.status(ClientOptions(), context: context).output.contains("Logged in as:       ann"))

        let rest = try TSHCommands.logout(ClientOptions(), context: context)
        #expect(rest.output == "Logged out ann from proxy.example.com.\n")
        #expect(try TSHCommands.status(ClientOptions(), context: context).exitCode == 1)
    }

    @Test("login loads the agent (replacing the previous login's key); logout empties it")
    func agent() async throws {
        try await withAgent { agent in
            let warnings = WarningLog()
            let context = makeContext(
                home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456", "secret", "123456"]), agent: agent.client,
                clock: SystemClock(), warnings: warnings)
            _ = try await TSHCommands.login(options, LoginOptions(), context: context)
            let first = try ProfileStore(home: home).loadKey(try ProfileStore(home: home).loadProfile("proxy.example.com"))
            _ = try await TSHCommands.login(options, LoginOptions(), context: context)
            let second = try ProfileStore(home: home).loadKey(try ProfileStore(home: home).loadProfile("proxy.example.com"))
            let held = try agent.client.list()
            #expect(held.count == 1, "\(held)")
            #expect(held.first?.blob == (try second.parsedSSHCertificate().wireBytes))
            #expect(held.first?.comment == "teleport:joe@proxy.example.com")
            #expect(!held.contains { $0.blob == (try? first.parsedSSHCertificate().wireBytes) })
            let listed = try await agent.sshAdd(["-L"])
            #expect(listed.stdout.contains(second.sshCertificate.split(separator: " ")[1]), "\(listed)")

            _ = try TSHCommands.logout(ClientOptions(), context: context)
            #expect(try agent.client.list().isEmpty)
            #expect(warnings.lines.withLock { $0 }.isEmpty)
        }
    }

    @Test("-k no keeps the key out of the agent; a dead agent is a warning, not a failure")
    func agentModes() async throws {
        try await withAgent { agent in
            let context = makeContext(
                home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456"]), agent: agent.client, clock: SystemClock())
            _ = try await TSHCommands.login(options, LoginOptions(addKeysToAgent: .no), context: context)
            #expect(try agent.client.list().isEmpty)
        }
        let warnings = WarningLog()
        let context = makeContext(
            home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456"]),
            agent: SSHAgentClient(socketPath: "/nonexistent/agent.sock"), clock: SystemClock(), warnings: warnings)
        let outcome = try await TSHCommands.login(options, LoginOptions(), context: context)
        #expect(outcome.exitCode == 0)
        #expect(warnings.lines.withLock { $0 }.first?.hasPrefix("WARNING: the key was not added to the SSH agent") == true)
    }

    @Test("ssh-keygen -L reads the stored certificate and its principals")
    func sshKeygenReadsCertificate() async throws {
        let context = makeContext(home: home, proxy: proxy(), prompter: CannedPrompter(["secret", "123456"]), clock: SystemClock())
        _ = try await TSHCommands.login(options, LoginOptions(), context: context)
        let file = ProfileStore(home: home).keyPaths(profile: "proxy.example.com", user: "joe").sshCertificate
        let result = try await TestSupport.run(TestSupport.sshKeygen, ["-L", "-f", file.path])
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"), "\(result.stdout)")
        let principals = result.stdout.components(separatedBy: "Principals:").last?.components(separatedBy: "Critical Options:").first
        #expect(principals?.split(whereSeparator: \.isWhitespace) == ["joe", "root"], "\(result.stdout)")
    }
}
