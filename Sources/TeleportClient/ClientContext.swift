import Foundation
public import TeleportAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Everything a `tsh` command touches outside itself, injected so tests can run the commands
/// without a terminal, a network, an agent or the real clock.
public struct ClientContext: Sendable {
    /// The environment variables (`TELEPORT_PROXY`, `TELEPORT_USER`, `SSH_AUTH_SOCK`, ...).
    public var environment: [String: String]
    /// The profile directory.
    public var store: ProfileStore
    /// Asks for passwords and codes.
    public var prompter: any Prompter
    /// Makes the transport to a proxy (`insecure` is `--insecure`).
    public var transport: @Sendable (_ address: ProxyAddress, _ insecure: Bool) throws -> any ProxyTransport
    /// Makes the transport to a proxy that presents the user's certificate.
    public var userTransport: @Sendable (_ address: ProxyAddress, _ insecure: Bool, _ key: ClientKey) throws -> any ProxyTransport
    /// The SSH agent, when one is running.
    public var agent: SSHAgentClient?
    /// The clock.
    public var clock: any WallClock
    /// Prints a warning line (standard error).
    public var warn: @Sendable (String) -> Void
    /// The local OS user name (the default Teleport user).
    public var localUser: String?

    /// Creates a context.
    public init(
        environment: [String: String], store: ProfileStore, prompter: any Prompter,
        transport: @escaping @Sendable (ProxyAddress, Bool) throws -> any ProxyTransport, agent: SSHAgentClient?,
        clock: any WallClock, warn: @escaping @Sendable (String) -> Void, localUser: String?,
        userTransport: @escaping @Sendable (ProxyAddress, Bool, ClientKey) throws -> any ProxyTransport = { address, insecure, key in
            try ProxyHTTPSClient(address: address, insecure: insecure, clientKey: key)
        }
    ) {
        self.userTransport = userTransport
        self.environment = environment
        self.store = store
        self.prompter = prompter
        self.transport = transport
        self.agent = agent
        self.clock = clock
        self.warn = warn
        self.localUser = localUser
    }

    /// The real thing: the process environment, `$TELEPORT_HOME` or `~/.tsh`, the terminal, HTTPS
    /// with the system trust store, `SSH_AUTH_SOCK`, the system clock, standard error.
    public static func live() -> ClientContext {
        let environment = ProcessInfo.processInfo.environment
        return ClientContext(
            environment: environment, store: ProfileStore(home: ProfileStore.defaultHome(environment: environment)),
            prompter: TerminalPrompt(),
            transport: { address, insecure in try ProxyHTTPSClient(address: address, insecure: insecure) },
            agent: SSHAgentClient.fromEnvironment(environment), clock: SystemClock(),
            warn: { line in StandardStreams.err(line + "\n") },
            localUser: currentOSUser(environment: environment))
    }

    /// The name of the user running the process (from the password database, else `$USER`).
    public static func currentOSUser(environment: [String: String]) -> String? {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            let text = String(cString: name)
            if !text.isEmpty { return text }
        }
        return environment["USER"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
