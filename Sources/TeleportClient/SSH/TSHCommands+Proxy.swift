import Foundation
import Glibc
import NIOCore
import NIOSSH
public import TeleportAPI
import TeleportCrypto

extension TSHCommands {
    /// `tsh proxy ssh [USER@]HOST[:PORT]`: connects standard input and output to a node's SSH port
    /// through the proxy, for OpenSSH's `ProxyCommand` (the SSH session itself is OpenSSH's, end to
    /// end with the node).
    public static func proxySSH(_ options: ClientOptions, target: String, cluster: String?, context: ClientContext) async throws -> Int32 {
        var rest = target
        var login = context.localUser
        if let at = rest.lastIndex(of: "@") {
            login = String(rest[..<at])
            rest = String(rest[rest.index(after: at)...])
        }
        let parsed = try HostPort.parse(rest, defaultPort: 3022, key: "tsh proxy ssh")
        let access = try await NodeAccess.open(options, cluster: cluster, context: context, needNodes: false)
        var host = parsed.host
        if host.hasSuffix(".\(access.cluster)") { host = String(host.dropLast(access.cluster.count + 1)) }
        guard let login, !login.isEmpty else { throw TeleportError.badParameter("no login: tsh proxy ssh LOGIN@HOST:PORT") }
        let proxy = try await SSHConnection.connect(
            host: access.proxyHost, port: access.proxyPort, credentials: try access.credentials(login: login), hostKey: access.proxyCheck)
        defer { proxy.close() }
        let channel = try await proxy.proxyChannel(to: "\(host):\(parsed.port)@\(access.cluster)") { channel in
            try channel.pipeline.syncOperations.addHandler(StdoutWriter())
        }
        StandardInputPump.start(
            into: channel, escape: false, wrap: { SSHChannelData(type: .channel, data: .byteBuffer($0)) },
            onEOF: { channel.close(mode: CloseMode.output, promise: Optional<EventLoopPromise<Void>>.none) })
        try await channel.closeFuture.get()
        return 0
    }

    /// `tsh config`: an ssh_config block so that plain OpenSSH `ssh`, `scp` and `sftp` reach the
    /// cluster's nodes as `NODE.CLUSTER` through the proxy, with the profile's key and certificate
    /// and host keys from the cluster (via `tsh known-hosts`, never trust on first use).
    public static func config(_ options: ClientOptions, tshPath: String, context: ClientContext) throws -> Outcome {
        guard let name = try context.store.currentProfileName() else {
            throw TeleportError.accessDenied("not logged in: run tsh login --proxy=HOST first")
        }
        let profile = try context.store.loadProfile(name)
        let paths = context.store.keyPaths(profile: profile.name, user: profile.user)
        let cluster = profile.cluster
        func quoted(_ text: String) -> String { "\"\(text)\"" }
        let home = context.store.home.path
        let text = """
            # Begin generated Teleport configuration for \(profile.webProxyAddress.hostPort)
            # Cluster \(cluster): reach a node with  ssh LOGIN@NODE.\(cluster)
            Host *.\(cluster)
                Port 3022
                IdentityFile \(quoted(paths.sshKey.path))
                CertificateFile \(quoted(paths.sshCertificate.path))
                IdentitiesOnly yes
                UserKnownHostsFile /dev/null
                KnownHostsCommand /usr/bin/env TELEPORT_HOME=\(quoted(home)) \(quoted(tshPath)) --proxy=\(profile.webProxyAddress.hostPort) known-hosts %H
                StrictHostKeyChecking yes
                ProxyCommand /usr/bin/env TELEPORT_HOME=\(quoted(home)) \(quoted(tshPath)) --proxy=\(profile.webProxyAddress.hostPort) proxy ssh --cluster=\(cluster) %r@%h:%p
            # End generated Teleport configuration

            """
        return Outcome(output: text)
    }
}

/// Writes a byte stream to standard output (blocking writes).
final class StdoutWriter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = SSHChannelData

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard message.type == .channel, case .byteBuffer(let bytes) = message.data else { return }
        FileDescriptorWriter.writeAll(1, bytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { close(1) }
        context.fireUserInboundEventTriggered(event)
    }
}
