import Foundation
import TeleportAPI
import TeleportAuthServer
import TeleportBackendPostgres

extension FileConfig {
    /// Checks that every listen address can be bound here (its host is an IP address or a name
    /// this host resolves), naming the key: `listen_addr: notaport` stops `teleport start` before
    /// anything is written instead of failing once the cluster was created.
    func checkListenAddresses(source: String) throws {
        let addresses: [(key: String, value: String, port: Int)] = [
            ("auth_service.listen_addr", auth.listenAddr, 3025), ("ssh_service.listen_addr", ssh.listenAddr, 3022),
            ("proxy_service.listen_addr", proxy.listenAddr, 3023), ("proxy_service.web_listen_addr", proxy.webListenAddr, 3080),
            ("proxy_service.tunnel_listen_addr", proxy.tunnelListenAddr, 3024), ("teleport.diag_addr", teleport.diagAddr ?? "", 3000),
            ("proxy_service.postgres_listen_addr", proxy.postgresListenAddr ?? "", 5432),
            ("proxy_service.mysql_listen_addr", proxy.mysqlListenAddr ?? "", 3036), ("db_service.listen_addr", db.listenAddr, 3029),
            ("app_service.listen_addr", app.listenAddr, 3031), ("kubernetes_service.listen_addr", kube.listenAddr, 3027),
            ("proxy_service.kube_listen_addr", proxy.kubeListenAddr ?? "", 3026),
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
            for uri in teleport.storage.auditEventsURIs where !AuditLogs.isSupported(uri) {
                throw TeleportError.badParameter("\(source): \(AuditLogs.unsupported(uri))")
            }
            if let uri = teleport.storage.auditSessionsURI {
                if uri.hasPrefix("s3://") {
                    do {
                        _ = try S3Location.parse(uri, defaultRegion: teleport.storage.region)
                    } catch let error as TeleportError {
                        throw TeleportError.badParameter("\(source): \(error.message)")
                    }
                } else if !uri.hasPrefix("file://") {
                    throw TeleportError.badParameter(
                        "\(source): teleport.storage.audit_sessions_uri: \(uri) is not supported (file:///PATH or s3://BUCKET/PREFIX?endpoint=...&region=...)")
                }
            }
        }
    }
}

extension FileConfig {
    /// `storage: type: etcd`: peers are listed and every named file is readable, checked before
    /// anything is created (one-line errors naming the key and the fix).
    func checkPostgresStorage(source: String) throws {
        guard let connString = teleport.storage.connString, !connString.isEmpty else {
            throw TeleportError.badParameter(
                "\(source): teleport.storage.conn_string is missing; e.g. conn_string: postgresql://teleport@db.example.com:5432/teleport_backend?sslmode=verify-full")
        }
        do {
            let settings = try PostgresSettings.parse(connString)
            try PostgresBackend.checkTLS(settings)
        } catch let error as TeleportError {
            throw TeleportError.badParameter("\(source): \(error.message)")
        }
    }

    func checkEtcdStorage(source: String) throws {
        let storage = teleport.storage
        guard !storage.peers.isEmpty else {
            throw TeleportError.badParameter(
                "\(source): teleport.storage.peers is missing; list etcd's client URLs, e.g. peers: [\"https://10.0.0.1:2379\"]")
        }
        for peer in storage.peers where !(peer.hasPrefix("https://") || peer.hasPrefix("http://")) {
            throw TeleportError.badParameter("\(source): teleport.storage.peers: \"\(peer)\" is not an https://host:port URL")
        }
        if storage.peers.contains(where: { $0.hasPrefix("http://") }) && !storage.insecure {
            throw TeleportError.badParameter(
                "\(source): teleport.storage.peers: plain http:// sends Teleport's secrets in the clear; use https:// (or set insecure: true)")
        }
        if storage.username == nil && storage.tlsCertFile == nil && !storage.insecure {
            throw TeleportError.badParameter(
                "\(source): teleport.storage: etcd needs tls_cert_file and tls_key_file (or username and password_file)")
        }
        let files: [(String, String?)] = [
            ("tls_cert_file", storage.tlsCertFile), ("tls_key_file", storage.tlsKeyFile), ("tls_ca_file", storage.tlsCAFile),
            ("password_file", storage.passwordFile),
        ]
        for case (let key, let path?) in files where !FileManager.default.isReadableFile(atPath: path) {
            throw TeleportError.badParameter("\(source): teleport.storage.\(key): cannot read \(path); check the path and its permissions")
        }
        if storage.username != nil && storage.passwordFile == nil {
            throw TeleportError.badParameter("\(source): teleport.storage.username needs password_file (the file holding etcd's password)")
        }
        guard storage.etcdMaxClientMsgSizeBytes >= 65536 else {
            throw TeleportError.badParameter(
                "\(source): teleport.storage.etcd_max_client_msg_size_bytes \(storage.etcdMaxClientMsgSizeBytes) is too small; use at least 65536")
        }
    }
}
