import Crypto
import Foundation
import NIOHTTP1
import Synchronization
import TeleportAPI
import TeleportCrypto
import TeleportTestSupport
import Testing

@testable import TeleportClient

#if canImport(Glibc)
    import Glibc
#endif

/// `tsh login --auth=NAME` in process: a fake proxy plays the proxy and the browser (it calls tsh's
/// real loopback listener over a socket); the provider itself is the end-to-end tests' business.
@Suite("tsh single sign-on login")
struct SSOLoginCommandTests {
    /// A GET over a plain socket to 127.0.0.1:`port` (a browser following a redirect): status and body.
    static func get(port: Int, path: String) throws -> (status: Int, body: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TeleportError.connectionProblem("socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TeleportError.connectionProblem("connect") }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, text.components(separatedBy: "\r\n\r\n").dropFirst().joined())
    }

    /// The proxy's ping (with connectors) and `/webapi/oidc/login/console`; after answering the
    /// console request it acts as the browser coming back: a forged result first, then the real one.
    final class SSOProxy: ProxyTransport {
        let cluster: FakeCluster
        let clock: any WallClock
        let requests = Mutex<[WebAPI.SSOConsoleLoginRequest]>([])
        let browser = Mutex<[(status: Int, body: String)]>([])
        let localAuth: Bool

        init(cluster: FakeCluster, clock: any WallClock, localAuth: Bool = true) {
            self.cluster = cluster
            self.clock = clock
            self.localAuth = localAuth
        }

        func get(_ path: String) async throws -> HTTPReply {
            let ping = WebAPI.PingResponse(
                clusterName: cluster.name, serverVersion: "test",
                auth: .init(
                    type: "oidc", secondFactor: "otp", localAuth: localAuth, connectorName: "okta",
                    connectors: [.init(name: "okta", kind: "oidc", display: "Okta"), .init(name: "gh", kind: "github", display: "GitHub")]),
                proxy: .init(ssh: .init(listenAddr: "0.0.0.0:3023", publicAddr: "proxy.test:3023")))
            return HTTPReply(status: 200, body: try ResourceCodec.json(ping))
        }

        func post(_ path: String, body: Data) async throws -> HTTPReply {
            guard path == "/webapi/oidc/login/console" else { return HTTPReply(status: 404, body: Data()) }
            let request = try ResourceCodec.jsonDecoder().decode(WebAPI.SSOConsoleLoginRequest.self, from: body)
            requests.withLock { $0.append(request) }
            let callback = try #require(URLComponents(string: request.clientRedirectURL))
            let secret = try #require(callback.queryItems?.first { $0.name == "secret" }?.value)
            let port = try #require(callback.port)
            let reply = try cluster.login(
                user: "ann@example.com", sshPublicKey: request.sshPublicKey, tlsPublicKeyPEM: request.tlsPublicKeyPEM, logins: ["ann"], ttl: 3600,
                clock: clock)
            let state = "state-1"
            let good = try SSOResultSeal.seal(try ResourceCodec.json(reply), secret: secret, state: state)
            let forged = try SSOResultSeal.seal(try ResourceCodec.json(reply), secret: SSOResultSeal.makeSecret(), state: state)
            Task.detached { [self] in
                for sealed in [forged, good] {
                    let result = try Self.get(port: port, path: "/callback?state=\(state)&response=\(sealed)")
                    self.browser.withLock { $0.append(result) }
                }
            }
            return HTTPReply(status: 200, body: try ResourceCodec.json(AuthAPI.SSORequestCreated(redirectURL: "https://idp.example.com/authorize?state=\(state)")))
        }

        static func get(port: Int, path: String) throws -> (status: Int, body: String) { try SSOLoginCommandTests.get(port: port, path: path) }
    }

    static func context(home: URL, proxy: SSOProxy, clock: any WallClock, warnings: WarningLog) -> ClientContext {
        ClientContext(
            environment: [:], store: ProfileStore(home: home), prompter: CannedPrompter([]), transport: { _, _ in proxy }, agent: nil, clock: clock,
            warn: { warnings.append($0) }, localUser: "localperson")
    }

    @Test("--auth=okta --browser=none: prints the URL, refuses a forged callback, stores the profile of the SSO user")
    func consoleLogin() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
        let home = try TestSupport.makeTemporaryDirectory(prefix: "tsh-sso").appendingPathComponent(".tsh")
        let proxy = SSOProxy(cluster: try FakeCluster(), clock: clock)
        let warnings = WarningLog()
        let outcome = try await TSHCommands.login(
            ClientOptions(proxy: "proxy.example.com"), LoginOptions(ttl: "1h", auth: "okta", browser: "none"),
            context: Self.context(home: home, proxy: proxy, clock: clock, warnings: warnings))
        #expect(outcome.output.contains("Logged in as:       ann@example.com"), "\(outcome.output)")
        #expect(warnings.lines.withLock { $0 } == ["Open this URL in a browser to log in: https://idp.example.com/authorize?state=state-1"])
        let request = try #require(proxy.requests.withLock { $0.first })
        #expect(request.connectorID == "okta" && request.ttlSeconds == 3600)
        #expect(request.clientRedirectURL.hasPrefix("http://127.0.0.1:"))
        try LoginProof.verify(
            request.keyProof, purpose: .ssoLogin, user: "okta", sshPublicKey: try SSHPublicKey(authorizedKeyLine: request.sshPublicKey),
            tlsPublicKey: try P256.Signing.PublicKey(pemRepresentation: request.tlsPublicKeyPEM), now: clock.now())
        let pages = proxy.browser.withLock { $0 }
        #expect(pages.count == 2 && pages[0].status == 400 && pages[1].status == 200)
        #expect(pages[1].body.contains("You may close this tab"))
        let profile = try ProfileStore(home: home).loadProfile("proxy.example.com")
        #expect(profile.user == "ann@example.com")
    }

    @Test("the default connector comes from ping; --auth=local asks for the password; unknown names list the connectors")
    func connectorChoice() throws {
        let auth = WebAPI.PingResponse.Auth(
            type: "oidc", secondFactor: "otp", connectorName: "okta",
            connectors: [.init(name: "okta", kind: "oidc", display: "Okta"), .init(name: "gh", kind: "github", display: "GitHub")])
        #expect(try SSOLogin.connector(asked: nil, ping: auth)?.name == "okta")
        #expect(try SSOLogin.connector(asked: "local", ping: auth) == nil)
        #expect(try SSOLogin.connector(asked: "github", ping: auth)?.name == "gh", "a kind with one connector names it")
        #expect(try SSOLogin.connector(asked: nil, ping: .init(type: "local", secondFactor: "otp")) == nil)
        #expect {
            try SSOLogin.connector(asked: "saml", ping: auth)
        } throws: { error in
            (error as? TeleportError)?.message.contains("okta (oidc), gh (github)") == true
        }
    }

    @Test("the listener answers only a result sealed with its secret, only on /callback")
    func listenerAnswers() throws {
        let secret = SSOResultSeal.makeSecret()
        let sealed = try SSOResultSeal.seal(Data("{}".utf8), secret: secret, state: "s")
        let answer = SSOCallbackListener.CallbackHandler.answer
        #expect(answer("/callback?state=s&response=\(sealed)", .GET, secret).0 == .ok)
        #expect(answer("/callback?state=other&response=\(sealed)", .GET, secret).0 == .badRequest, "the state is authenticated")
        #expect(answer("/callback?state=s&response=\(sealed)", .GET, SSOResultSeal.makeSecret()).0 == .badRequest)
        #expect(answer("/callback?state=s", .GET, secret).0 == .badRequest)
        #expect(answer("/other?state=s&response=\(sealed)", .GET, secret).0 == .notFound)
        #expect(answer("/callback?state=s&response=\(sealed)", .POST, secret).0 == .notFound)
    }

    @Test("a password login is refused before any prompt when local_auth is false")
    func localAuthOff() async throws {
        let clock = ManualClock()
        let home = try TestSupport.makeTemporaryDirectory(prefix: "tsh-sso").appendingPathComponent(".tsh")
        let proxy = SSOProxy(cluster: try FakeCluster(), clock: clock, localAuth: false)
        await #expect {
            _ = try await TSHCommands.login(
                ClientOptions(proxy: "proxy.example.com", user: "joe"), LoginOptions(auth: "local"),
                context: Self.context(home: home, proxy: proxy, clock: clock, warnings: WarningLog()))
        } throws: { error in
            (error as? TeleportError)?.message.contains("local_auth: false") == true
        }
    }
}
