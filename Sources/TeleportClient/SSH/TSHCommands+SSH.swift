import Dispatch
import Foundation
import Glibc
import NIOCore
import NIOPosix
import NIOSSH
public import TeleportAPI
import TeleportCrypto
import TeleportSSH
import TeleportSSHClient

/// `tsh ssh` options.
public struct SSHCommandOptions: Sendable {
    /// `-l LOGIN`.
    public var login: String?
    /// `[LOGIN@]HOST` or `[LOGIN@]label=value[,...]`.
    public var target: String
    /// The remote command (empty: a shell).
    public var command: [String]
    /// `-p PORT`.
    public var port: Int?
    /// `-t` (true), `-T` (false), or neither (nil: a terminal for a shell on a terminal).
    public var tty: Bool?
    /// `-L [BIND:]PORT:HOST:HOSTPORT`.
    public var localForwards: [String]
    /// `-R [BIND:]PORT:HOST:HOSTPORT`.
    public var remoteForwards: [String]
    /// `-N`: no command, forwarding only.
    public var noCommand: Bool
    /// `--cluster`.
    public var cluster: String?

    public init(
        login: String?, target: String, command: [String], port: Int?, tty: Bool?, localForwards: [String], remoteForwards: [String],
        noCommand: Bool, cluster: String?
    ) {
        self.login = login
        self.target = target
        self.command = command
        self.port = port
        self.tty = tty
        self.localForwards = localForwards
        self.remoteForwards = remoteForwards
        self.noCommand = noCommand
        self.cluster = cluster
    }

    /// Extra `env` requests (`tsh join` names the session to join this way).
    var environment: [String: String] = [:]
}

/// A logged-in user's way to nodes: the proxy's SSH address, credentials, and the cluster's host keys.
struct NodeAccess: Sendable {
    let proxyHost: String
    let proxyPort: Int
    let cluster: String
    let key: ClientKey
    let hostKeys: [AuthAPI.HostKey]
    let nodes: [ServerNode]
    let web: WebClient
    /// The keys the proxy's cluster vouches for (the nodes' cluster's, unless the nodes are a
    /// leaf cluster's: then the root's).
    var proxyHostKeys: [AuthAPI.HostKey]? = nil

    static func open(_ options: ClientOptions, cluster: String?, context: ClientContext, needNodes: Bool) async throws -> NodeAccess {
        let session = try TSHCommands.session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        // Another cluster: a clear refusal naming the clusters there are (tsh clusters), or a
        // leaf cluster whose nodes the root's proxy reaches through the leaf's tunnel.
        let leaf = try await TSHCommands.checkCluster(cluster, profileCluster: session.cluster, web: web)
        async let keys = web.hostKeys()
        async let ping = web.ping()
        // The proxy's SSH port from its own announcement (asked once more when the first answer
        // fails: a proxy restarting gracefully may drop a connection, and guessing 3023 would
        // fail later with a misleading address); the host is the one we reach it at.
        let host = session.address.host
        let announced: WebAPI.PingResponse
        do { announced = try await ping } catch { announced = try await web.ping() }
        let port = (try? HostPort.parse(announced.proxy.ssh.listenAddr, defaultPort: 3023, key: "proxy ssh listen_addr").port) ?? 3023
        if leaf, let cluster {
            let listing = try await web.leafNodes(cluster: cluster, certificate: session.key.sshCertificate)
            var access = NodeAccess(
                proxyHost: host, proxyPort: port, cluster: cluster, key: session.key, hostKeys: listing.hostKeys, nodes: listing.nodes, web: web)
            access.proxyHostKeys = try await keys
            return access
        }
        let nodes = needNodes ? try await web.nodes(labels: "") : []
        return NodeAccess(
            proxyHost: host, proxyPort: port, cluster: session.cluster, key: session.key, hostKeys: try await keys, nodes: nodes, web: web)
    }

    func credentials(login: String) throws -> SSHClientCredentials {
        var credentials = SSHClientCredentials(login: login, key: try key.sshPrivateKey(), certificate: try? key.parsedSSHCertificate())
        let (web, user) = (web, credentials.certificate?.keyID ?? "")
        // A refused valid certificate: a lock of ours may be why; the proxy tells us its message.
        credentials.explainRefusal = { login in
            guard let locks = try? await web.myLocks(login: login) else { return nil }
            return SSHRefusal.lockMessage(locks, user: user)
        }
        return credentials
    }

    /// Any key the cluster vouches for may be the proxy's.
    var proxyCheck: HostKeyCheck {
        HostKeyCheck(accepted: (proxyHostKeys ?? hostKeys).compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) }, what: "the proxy \(proxyHost)")
    }

    /// The keys of the node `host` names (by name, UUID or address): those registered for the
    /// node's UUID (Teleport nodes, at join) or for its host name (OpenSSH nodes, when the host CA
    /// signed their certificate).
    func nodeCheck(_ host: String) -> HostKeyCheck {
        var name = host.lowercased()
        if name.hasSuffix(".\(cluster.lowercased())") { name = String(name.dropLast(cluster.count + 1)) }
        let matched = nodes.filter { node in
            if node.spec.hostname.lowercased() == name || node.name.lowercased() == name { return true }
            guard let address = try? HostPort.parse(node.spec.addr, defaultPort: 3022, key: "addr") else { return false }
            return address.host.lowercased() == name
        }
        let ids = Set(matched.map(\.name))
        let names = Set(matched.map { $0.spec.hostname.lowercased() } + [name])
        let keys = hostKeys.filter { ids.contains($0.hostID) || $0.hostID.lowercased() == name || names.contains($0.nodeName.lowercased()) }
            .compactMap { try? SSHPublicKey(authorizedKeyLine: $0.publicKey) }
        return HostKeyCheck(accepted: keys, what: "node \(host)")
    }

    /// Connects to the proxy and through it to `host`.
    func connect(login: String, host: String, port: Int?, inbound: (@Sendable (any Channel, SSHChannelType) -> EventLoopFuture<Void>)? = nil)
        async throws -> (proxy: SSHConnection, node: SSHConnection)
    {
        var credentials = try credentials(login: login)
        credentials.target = "node \(host)"
        let proxy = try await SSHConnection.connect(host: proxyHost, port: proxyPort, credentials: credentials, hostKey: proxyCheck)
        do {
            let target = "\(host):\(port ?? 0)@\(cluster)"
            let node = try await proxy.tunnel(to: target, credentials: credentials, hostKey: nodeCheck(host), inbound: inbound)
            return (proxy, node)
        } catch {
            proxy.close()
            throw error
        }
    }
}

extension TSHCommands {
    /// `tsh ssh`: a shell or command on one node, or a command on every node matching labels.
    public static func ssh(_ options: ClientOptions, _ ssh: SSHCommandOptions, context: ClientContext) async throws -> Int32 {
        var host = ssh.target
        var login = ssh.login
        if let at = host.lastIndex(of: "@") {
            if login == nil { login = String(host[..<at]) }
            host = String(host[host.index(after: at)...])
        }
        guard let login = login ?? context.localUser, !login.isEmpty else {
            throw TeleportError.badParameter("no login: pass -l LOGIN or LOGIN@HOST")
        }
        guard !host.isEmpty else { throw TeleportError.badParameter("no host: tsh ssh [LOGIN@]HOST [COMMAND...]") }
        let command = ssh.command.isEmpty ? nil : ssh.command.joined(separator: " ")
        if host.contains("=") {
            guard let command else { throw TeleportError.badParameter("a label selector runs a command on every match: give the command") }
            return try await runOnMatching(options, ssh, login: login, labels: host, command: command, context: context)
        }
        let access = try await NodeAccess.open(options, cluster: ssh.cluster, context: context, needNodes: true)
        let remoteTargets = try ssh.remoteForwards.map(ForwardSpec.parse)
        var inbound: (@Sendable (any Channel, SSHChannelType) -> EventLoopFuture<Void>)?
        if !remoteTargets.isEmpty {
            inbound = { @Sendable channel, type in ForwardSpec.acceptRemote(channel, type, remoteTargets) }
        }
        let (proxy, node) = try await access.connect(login: login, host: host, port: ssh.port, inbound: inbound)
        defer {
            node.close()
            proxy.close()
        }
        var listeners: [any Channel] = []
        defer { for listener in listeners { listener.close(promise: nil) } }
        for spec in try ssh.localForwards.map(ForwardSpec.parse) {
            listeners.append(try await spec.listenLocally(through: node))
        }
        for spec in remoteTargets {
            try await spec.requestRemote(on: node)
        }
        if ssh.noCommand {
            try await node.channel.closeFuture.get()
            return 0
        }
        let interactive = LocalTerminal.isInteractive
        let wantTTY = ssh.tty ?? (command == nil && interactive)
        let size = LocalTerminal.size()
        var environment: [String: String] = [:]
        for (name, value) in context.environment where name == "LANG" || name.hasPrefix("LC_") {
            environment[name] = value
        }
        environment.merge(ssh.environment) { $1 }
        let request = RemoteSessionRequest(
            command: command, terminal: wantTTY ? (context.environment["TERM"] ?? "xterm", size.rows, size.columns) : nil,
            environment: environment)
        let handler = RemoteSessionHandler(request: request, output: .standard, eventLoop: node.channel.eventLoop)
        let channel = try await node.openSession { child in
            try child.pipeline.syncOperations.addHandler(handler)
        }
        let terminal = LocalTerminal()
        try await handler.startFuture.get()
        var resizeSource: (any DispatchSourceSignal)?
        if wantTTY && interactive {
            terminal.makeRaw()
            signal(SIGWINCH, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGWINCH)
            source.setEventHandler {
                let size = LocalTerminal.size()
                channel.eventLoop.execute { RemoteSessionHandler.resize(channel, rows: size.rows, columns: size.columns) }
            }
            source.resume()
            resizeSource = source
        }
        defer {
            resizeSource?.cancel()
            terminal.restore()
        }
        StandardInputPump.start(
            into: channel, escape: wantTTY && interactive,
            wrap: { SSHChannelData(type: .channel, data: .byteBuffer($0)) },
            onEOF: { channel.close(mode: CloseMode.output, promise: Optional<EventLoopPromise<Void>>.none) })
        let exit = try await handler.exitFuture.get()
        terminal.restore()
        if let reason = handler.serverReason {
            // The server ended the session and said why (a lock, the idle timeout): the reason
            // is the last word, once.
            if !handler.serverReasonShown { context.warn(TerminalText.escape(reason)) }
        } else if case .signal(let name) = exit {
            context.warn("the remote command was killed by signal \(name)")
        } else if exit == .unknown {
            context.warn("the connection to \(host) closed without an exit status")
        }
        return exit.exitCode
    }

    /// Runs `command` on every node matching `labels`, output lines prefixed by the node's name;
    /// the exit code is the worst (highest) of all.
    static func runOnMatching(
        _ options: ClientOptions, _ ssh: SSHCommandOptions, login: String, labels: String, command: String, context: ClientContext
    ) async throws -> Int32 {
        let access = try await NodeAccess.open(options, cluster: ssh.cluster, context: context, needNodes: true)
        let matching = try await access.web.nodes(labels: labels)
        guard !matching.isEmpty else { throw TeleportError.notFound("no node matches \(labels)") }
        return await withTaskGroup(of: Int32.self) { group in
            for node in matching {
                group.addTask {
                    let prefix = "[\(node.spec.hostname)] "
                    let out = LinePrefixer(prefix: prefix, fd: 1), err = LinePrefixer(prefix: prefix, fd: 2)
                    do {
                        let (proxy, connection) = try await access.connect(login: login, host: node.name, port: nil)
                        defer {
                            connection.close()
                            proxy.close()
                        }
                        let handler = RemoteSessionHandler(
                            request: RemoteSessionRequest(command: command, terminal: nil, environment: [:]),
                            output: SessionOutput(stdout: { out.feed($0) }, stderr: { err.feed($0) }),
                            eventLoop: connection.channel.eventLoop)
                        let channel = try await connection.openSession { try $0.pipeline.syncOperations.addHandler(handler) }
                        try await handler.startFuture.get()
                        channel.close(mode: .output, promise: nil)
                        let exit = try await handler.exitFuture.get()
                        out.finish()
                        err.finish()
                        return exit.exitCode
                    } catch {
                        err.finish()
                        FileDescriptorWriter.writeAll(2, ByteBuffer(string: "\(prefix)error: \((error as? TeleportError)?.message ?? "\(error)")\n"))
                        return 255
                    }
                }
            }
            var worst: Int32 = 0
            for await code in group { worst = max(worst, code) }
            return worst
        }
    }
}

/// Prefixes each output line with a node's name (whole lines only, so nodes do not interleave mid-line).
final class LinePrefixer: @unchecked Sendable {
    let prefix: String
    let fd: CInt
    private let lock = NSLock()
    private var partial: [UInt8] = []

    init(prefix: String, fd: CInt) {
        self.prefix = prefix
        self.fd = fd
    }

    func feed(_ buffer: ByteBuffer) {
        lock.withLock {
            partial += buffer.readableBytesView
            while let newline = partial.firstIndex(of: 10) {
                let line = Array(prefix.utf8) + partial[...newline]
                partial.removeSubrange(...newline)
                FileDescriptorWriter.writeAll(fd, ByteBuffer(bytes: line))
            }
        }
    }

    func finish() {
        lock.withLock {
            if !partial.isEmpty {
                FileDescriptorWriter.writeAll(fd, ByteBuffer(bytes: Array(prefix.utf8) + partial + [10]))
                partial.removeAll()
            }
        }
    }
}

/// `-L`/`-R` specifications: `[BIND:]PORT:HOST:HOSTPORT`.
struct ForwardSpec: Sendable {
    var bindHost: String
    var bindPort: Int
    var host: String
    var hostPort: Int

    static func parse(_ text: String) throws -> ForwardSpec {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func port(_ value: String) throws -> Int {
            guard let number = Int(value), (0...65535).contains(number) else {
                throw TeleportError.badParameter("\(text.debugDescription): \(value.debugDescription) is not a port")
            }
            return number
        }
        switch parts.count {
        case 3: return ForwardSpec(bindHost: "127.0.0.1", bindPort: try port(parts[0]), host: parts[1], hostPort: try port(parts[2]))
        case 4: return ForwardSpec(bindHost: parts[0].isEmpty ? "127.0.0.1" : parts[0], bindPort: try port(parts[1]), host: parts[2], hostPort: try port(parts[3]))
        default: throw TeleportError.badParameter("\(text.debugDescription) is not [BIND:]PORT:HOST:HOSTPORT")
        }
    }

    /// `-L`: listens locally; each connection becomes a `direct-tcpip` channel through the node.
    func listenLocally(through node: SSHConnection) async throws -> any Channel {
        let spec = self
        do {
            return try await ServerBootstrap(group: node.channel.eventLoop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { inbound in
                    let origin = inbound.remoteAddress ?? (try! SocketAddress(ipAddress: "127.0.0.1", port: 0))
                    Task {
                        do {
                            _ = try await node.openChannel(
                                type: .directTCPIP(.init(targetHost: spec.host, targetPort: spec.hostPort, originatorAddress: origin))
                            ) { child in
                                _ = child.eventLoop.flatSubmit { ChannelBridge.glue(child, inbound) }
                            }
                        } catch {
                            FileDescriptorWriter.writeAll(2, ByteBuffer(string: "channel for -L \(spec.bindPort) refused: \((error as? TeleportError)?.message ?? "\(error)")\n"))
                            inbound.close(promise: nil)
                        }
                    }
                    return inbound.eventLoop.makeSucceededVoidFuture()
                }
                .bind(host: bindHost, port: bindPort).get()
        } catch {
            throw TeleportError.connectionProblem("cannot listen on \(HostPort.join(bindHost, bindPort)) for -L: \(error)")
        }
    }

    /// `-R`: asks the node to listen.
    func requestRemote(on node: SSHConnection) async throws {
        let channel = node.channel
        let spec = self
        do {
            try await channel.eventLoop.flatSubmit {
                let promise = channel.eventLoop.makePromise(of: GlobalRequest.TCPForwardingResponse?.self)
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: NIOSSHHandler.self)
                    handler.sendTCPForwardingRequest(.listen(host: spec.bindHost, port: spec.bindPort), promise: promise)
                } catch {
                    promise.fail(error)
                }
                return promise.futureResult.map { _ in }
            }.get()
        } catch {
            throw TeleportError.accessDenied("the node refused -R \(spec.bindPort): the certificate may not permit port forwarding")
        }
    }

    /// A `forwarded-tcpip` channel from the node: connect it to the `-R` spec's local target.
    static func acceptRemote(_ channel: any Channel, _ type: SSHChannelType, _ specs: [ForwardSpec]) -> EventLoopFuture<Void> {
        guard case .forwardedTCPIP(let forwarded) = type,
            let spec = specs.first(where: { $0.bindPort == forwarded.listeningPort || $0.bindPort == 0 })
        else {
            return channel.eventLoop.makeFailedFuture(TeleportError.accessDenied("unexpected channel"))
        }
        return ChannelBridge.connect(channel, toHost: spec.host, port: spec.hostPort)
    }
}
