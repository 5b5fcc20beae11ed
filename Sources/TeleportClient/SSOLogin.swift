import Foundation
import TeleportAPI
import TeleportCrypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `tsh login --auth=NAME`: single sign-on through the browser.
enum SSOLogin {
    /// The connector to use: `--auth=NAME` (a connector's name, or `oidc`/`github` when the
    /// cluster has one connector of that kind), else the cluster's default when its type is not
    /// `local`; nil for a password login.
    ///
    /// - Throws: `badParameter` naming the connectors there are, when NAME is none of them.
    static func connector(asked: String?, ping: WebAPI.PingResponse.Auth) throws -> AuthAPI.ConnectorSummary? {
        let connectors = ping.connectors ?? []
        let wanted: String
        if let asked, !asked.isEmpty {
            if asked == "local" { return nil }
            wanted = asked
        } else {
            guard ping.type != "local", !ping.type.isEmpty else { return nil }
            wanted = ping.connectorName.flatMap { $0.isEmpty ? nil : $0 } ?? ping.type
        }
        if let found = connectors.first(where: { $0.name == wanted }) { return found }
        let ofKind = connectors.filter { $0.kind == wanted }
        if ofKind.count == 1 { return ofKind[0] }
        let known = connectors.map { "\($0.name) (\($0.kind))" }.joined(separator: ", ")
        throw TeleportError.badParameter(
            "the cluster has no connector named \"\(wanted)\"; use --auth=local or one of: \(known.isEmpty ? "(none)" : known) (tctl get connectors)")
    }

    /// Runs the browser flow and answers the certificates.
    static func run(
        connector: AuthAPI.ConnectorSummary, keys: ClientKeyPair, ttl: Double, web: WebClient, login: LoginOptions, context: ClientContext
    ) async throws -> AuthAPI.LoginResponse {
        guard let kind = AuthAPI.SSOKind(rawValue: connector.kind) else {
            throw TeleportError.badParameter("tsh cannot log in with a \(connector.kind) connector (oidc and github are supported)")
        }
        let listener = try await SSOCallbackListener.start()
        do {
            let request = WebAPI.SSOConsoleLoginRequest(
                connectorID: connector.name, clientRedirectURL: listener.clientRedirectURL, sshPublicKey: keys.sshPublicKeyLine,
                tlsPublicKeyPEM: keys.tlsPublicKeyPEM,
                keyProof: try keys.proof(for: connector.name, now: context.clock.now(), purpose: .ssoLogin), ttlSeconds: ttl)
            let started = try await web.ssoConsoleLogin(kind: kind, request)
            if login.browser == "none" || !openBrowser(started.redirectURL) {
                context.warn("Open this URL in a browser to log in: \(started.redirectURL)")
            } else {
                context.warn("If the browser does not open, open this URL to log in: \(started.redirectURL)")
            }
            return try await listener.wait(timeout: login.ssoTimeout)
        } catch {
            listener.close()
            throw error
        }
    }

    /// Opens `url` with `xdg-open` (or `open` on macOS) when one is on the PATH; false when not.
    static func openBrowser(_ url: String) -> Bool {
        #if os(macOS)
            let tool = "/usr/bin/open"
        #else
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            guard let tool = path.split(separator: ":").map({ "\($0)/xdg-open" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
            else { return false }
        #endif
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(tool), strdup(url), nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, tool, nil, nil, argv, environ) == 0 else { return false }
        return true
    }
}

extension WebClient {
    /// `POST /webapi/KIND/login/console`: the provider URL for a single sign-on login.
    func ssoConsoleLogin(kind: AuthAPI.SSOKind, _ request: WebAPI.SSOConsoleLoginRequest) async throws -> AuthAPI.SSORequestCreated {
        let body = try ResourceCodec.json(request)
        return try decode(
            AuthAPI.SSORequestCreated.self, try await transport.post("/webapi/\(kind.rawValue)/login/console", body: body), what: "single sign-on login")
    }
}
