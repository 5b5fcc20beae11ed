import TeleportAPI

/// The options every `tsh` command takes (flags, else environment variables).
public struct ClientOptions: Sendable, Equatable {
    /// `--proxy` (else `TELEPORT_PROXY`).
    public var proxy: String?
    /// `--user` (else `TELEPORT_USER`, else the local OS user).
    public var user: String?
    /// `-i/--identity`: use this identity file instead of a profile.
    public var identityFile: String?
    /// `--insecure`: do not verify the proxy's HTTPS certificate.
    public var insecure: Bool

    /// Creates options.
    public init(proxy: String? = nil, user: String? = nil, identityFile: String? = nil, insecure: Bool = false) {
        self.proxy = proxy
        self.user = user
        self.identityFile = identityFile
        self.insecure = insecure
    }

    /// `--proxy`, else `TELEPORT_PROXY`.
    func proxyText(_ environment: [String: String]) -> String? {
        if let proxy, !proxy.isEmpty { return proxy }
        return environment["TELEPORT_PROXY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `--user`, else `TELEPORT_USER`.
    func userText(_ environment: [String: String]) -> String? {
        if let user, !user.isEmpty { return user }
        return environment["TELEPORT_USER"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// The options of `tsh login`.
public struct LoginOptions: Sendable, Equatable {
    /// Whether to load the key into the SSH agent (`-k/--add-keys-to-agent`).
    public enum AgentMode: String, Sendable, CaseIterable {
        /// When an agent is running (`SSH_AUTH_SOCK` set).
        case auto
        /// Always; warn when there is no agent.
        case yes
        /// Never.
        case no
    }

    /// `--ttl`: a Go duration (`8h`, `90m`) or a number of minutes; nil for the default (12h).
    public var ttl: String?
    /// `-k/--add-keys-to-agent`.
    public var addKeysToAgent: AgentMode
    /// `-o/--out`: write an identity file here instead of a profile.
    public var out: String?
    /// `--auth=NAME`: a single sign-on connector (`local`: the password login); nil: the cluster's default.
    public var auth: String?
    /// `--browser=none`: print the login URL instead of opening a browser.
    public var browser: String?
    /// How long `tsh` waits for the browser to finish a single sign-on login.
    public var ssoTimeout: Duration = .seconds(180)

    /// The default certificate lifetime.
    public static let defaultTTLSeconds: Double = 12 * 3600

    /// Creates options.
    public init(ttl: String? = nil, addKeysToAgent: AgentMode = .auto, out: String? = nil, auth: String? = nil, browser: String? = nil) {
        self.ttl = ttl
        self.addKeysToAgent = addKeysToAgent
        self.out = out
        self.auth = auth
        self.browser = browser
    }

    /// The lifetime in seconds.
    ///
    /// - Throws: `badParameter` for a malformed or non-positive duration.
    public func ttlSeconds() throws -> Double {
        guard let ttl = ttl?.trimmingCharacters(in: .whitespaces), !ttl.isEmpty else { return Self.defaultTTLSeconds }
        if let minutes = Double(ttl), ttl.allSatisfy({ $0.isNumber }) {
            guard minutes > 0 else { throw TeleportError.badParameter("--ttl must be positive") }
            return minutes * 60
        }
        guard let seconds = GoDuration.parse(ttl) else {
            throw TeleportError.badParameter("--ttl: \"\(ttl)\" is not a duration (e.g. 8h, 90m, or minutes)")
        }
        guard seconds >= 60 else { throw TeleportError.badParameter("--ttl must be at least one minute") }
        return seconds
    }
}

import Foundation
