import Foundation
public import NIOCore
import NIOHTTP1
public import TeleportAPI

/// Proxy discovery for agents: `GET /webapi/ping` on an address that may be a proxy's web port.
/// The certificate is not verified (it may be self-signed): the answer only says where to dial;
/// the reverse tunnel itself is verified by mutual TLS against the cluster's host CA.
public enum ProxyPing {
    /// What a proxy's ping tells an agent.
    public struct Answer: Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// `proxy.tunnel_public_addr`, when the proxy reports it (empty or nil: not known to the proxy).
        public var tunnelPublicAddr: String?
        /// `proxy.tls_routing_enabled`: the web port serves tunnels too.
        public var tlsRoutingEnabled = false
        /// The port of `proxy.ssh.tunnel_listen_addr`, when reported.
        public var tunnelListenPort: Int?

        /// Creates an answer.
        public init(clusterName: String, tunnelPublicAddr: String? = nil, tlsRoutingEnabled: Bool = false, tunnelListenPort: Int? = nil) {
            self.clusterName = clusterName
            self.tunnelPublicAddr = tunnelPublicAddr
            self.tlsRoutingEnabled = tlsRoutingEnabled
            self.tunnelListenPort = tunnelListenPort
        }

        /// Where an agent that pinged `pinged` (`host:port` of the web address it was given) dials
        /// its tunnel: the advertised `tunnel_public_addr`; else, a proxy that does not know its
        /// public name (no `public_addr`, listening on all addresses), the pinged web address when
        /// the web port serves tunnels, or the pinged host with the tunnel listener's port (3024).
        public func tunnelAddress(pinged: (host: String, port: Int)) throws -> (host: String, port: Int) {
            if let advertised = tunnelPublicAddr, !advertised.isEmpty {
                let parsed = try HostPort.parse(advertised, defaultPort: 3024, key: "proxy.tunnel_public_addr")
                return (parsed.host, parsed.port)
            }
            if tlsRoutingEnabled { return pinged }
            return (pinged.host, tunnelListenPort ?? 3024)
        }
    }

    /// Pings `address` (`host:port`); throws when it does not answer as a proxy.
    public static func fetch(address: String, timeout: TimeAmount = .seconds(3)) async throws -> Answer {
        let parsed = try HostPort.parse(address, defaultPort: 3080, key: "proxy_server")
        let transport = try HTTPSTransport(
            host: parsed.host, port: parsed.port, identity: nil, trustedCAPEMs: [], serverName: AuthAPI.serverName, timeout: timeout,
            verifyServer: false, alpnProtocols: ["http/1.1"])
        let reply = try await transport.request(method: .GET, path: "/webapi/ping", body: nil)
        guard reply.status == 200,
            let object = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any],
            let cluster = object["cluster_name"] as? String
        else {
            throw TeleportError.notFound("\(address) does not answer /webapi/ping as a Teleport proxy (status \(reply.status))")
        }
        let proxy = object["proxy"] as? [String: Any]
        let tunnelListen = (proxy?["ssh"] as? [String: Any])?["tunnel_listen_addr"] as? String
        return Answer(
            clusterName: cluster, tunnelPublicAddr: proxy?["tunnel_public_addr"] as? String,
            tlsRoutingEnabled: proxy?["tls_routing_enabled"] as? Bool ?? false,
            tunnelListenPort: tunnelListen.flatMap { try? HostPort.parse($0, defaultPort: 3024, key: "proxy.ssh.tunnel_listen_addr").port })
    }
}
