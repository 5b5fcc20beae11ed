import Foundation
import TeleportAPI

extension FileConfig {
    /// Checks that every listen address can be bound here (its host is an IP address or a name
    /// this host resolves), naming the key: `listen_addr: notaport` stops `teleport start` before
    /// anything is written instead of failing once the cluster was created.
    func checkListenAddresses(source: String) throws {
        let addresses: [(key: String, value: String, port: Int)] = [
            ("auth_service.listen_addr", auth.listenAddr, 3025), ("ssh_service.listen_addr", ssh.listenAddr, 3022),
            ("proxy_service.listen_addr", proxy.listenAddr, 3023), ("proxy_service.web_listen_addr", proxy.webListenAddr, 3080),
            ("proxy_service.tunnel_listen_addr", proxy.tunnelListenAddr, 3024), ("teleport.diag_addr", teleport.diagAddr ?? "", 3000),
        ]
        for address in addresses where !address.value.isEmpty {
            let host = try HostPort.parse(address.value, defaultPort: address.port, key: "\(source): \(address.key)").host
            guard ListenHost.isListenable(host) else {
                throw TeleportError.badParameter(
                    "\(source): \(address.key): \"\(address.value)\" is not an address to listen on (the host must be an IP address or a name this host resolves, e.g. 0.0.0.0:\(address.port))")
            }
        }
    }
}

extension FileConfig {
    /// Checks what would otherwise fail only after the data directory was opened: the proxy's
    /// HTTPS key pair files can be read, and every `audit_events_uri` has a supported scheme.
    func checkFilesAndURIs(source: String, runAuth: Bool, runProxy: Bool) throws {
        if runProxy {
            for (index, pair) in proxy.httpsKeyPairs.enumerated() {
                for (field, path) in [("cert_file", pair.certFile), ("key_file", pair.keyFile)]
                where !FileManager.default.isReadableFile(atPath: path) {
                    throw TeleportError.badParameter(
                        "\(source): proxy_service.https_keypairs[\(index)].\(field): cannot read \(path) (check the path and its permissions)")
                }
            }
        }
        if runAuth {
            for uri in teleport.storage.auditEventsURIs where !(uri.hasPrefix("file://") || uri.hasPrefix("stdout:")) {
                throw TeleportError.badParameter(
                    "\(source): teleport.storage.audit_events_uri: \"\(uri)\" is not supported (use file:///path or stdout://)")
            }
        }
    }
}
