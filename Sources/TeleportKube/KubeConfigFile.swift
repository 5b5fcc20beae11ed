import Foundation
public import NIOSSL
public import TeleportAPI
import TeleportCrypto
import Yams

/// One Kubernetes cluster the service serves: its API server and the credentials the service
/// uses towards it, read from a kubeconfig file.
public struct KubeCluster: Sendable {
    /// The name users see (`tsh kube ls`): the kubeconfig context, or `kube_cluster_name`.
    public var name: String
    /// The API server's `https://` URL as written.
    public var server: String
    /// Its host (IPv6 without brackets) and port.
    public var host: String
    public var port: Int
    /// A path prefix of the server URL (usually empty), put before every request's path.
    public var pathPrefix: String
    /// `Authorization: Bearer` token of the kubeconfig user, if any.
    public var token: String?
    /// The TLS configuration towards the API server (its CA, the client certificate).
    public var tls: NIOSSLContext
    /// The name checked in the API server's certificate (`tls-server-name`, else the host).
    public var serverName: String?

    /// `host:port` as a Host header carries it.
    public var hostHeader: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Reads a kubeconfig (`kubernetes_service.kubeconfig_file`): every context is a cluster named
/// after the context; with `kube_cluster_name`, only the current context, under that name.
/// Relative file paths are relative to the kubeconfig's directory. Errors name the file, the
/// entry and the fix in one line.
public enum KubeConfigFile {
    /// Loads the clusters of `path`.
    public static func load(path: String, clusterName: String?) throws -> [KubeCluster] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TeleportError.badParameter("kubernetes_service.kubeconfig_file: cannot read \(path): check the path and its permissions")
        }
        return try parse(text, path: path, clusterName: clusterName)
    }

    /// Parses kubeconfig text.
    public static func parse(_ text: String, path: String, clusterName: String?) throws -> [KubeCluster] {
        func fail(_ what: String) -> TeleportError { TeleportError.badParameter("\(path): \(what)") }
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw fail("not valid YAML: \(error)")
        }
        guard let root = loaded as? [String: Any] else { throw fail("not a kubeconfig (expected a mapping with clusters, users and contexts)") }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func named(_ key: String, _ inner: String) throws -> [String: [String: Any]] {
            var result: [String: [String: Any]] = [:]
            for (index, entry) in ((root[key] as? [Any]) ?? []).enumerated() {
                guard let entry = entry as? [String: Any], let name = entry["name"] as? String, !name.isEmpty else {
                    throw fail("\(key)[\(index)] has no name")
                }
                result[name] = (entry[inner] as? [String: Any]) ?? [:]
            }
            return result
        }
        let clusters = try named("clusters", "cluster")
        let users = try named("users", "user")
        let contexts = try named("contexts", "context")
        func file(_ value: Any?) throws -> String? {
            guard let value = value as? String, !value.isEmpty else { return nil }
            let url = value.hasPrefix("/") ? URL(fileURLWithPath: value) : base.appendingPathComponent(value)
            do {
                return try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw fail("cannot read \(url.path): check the path and its permissions")
            }
        }
        func data(_ value: Any?, field: String) throws -> String? {
            guard let value = value as? String, !value.isEmpty else { return nil }
            guard let decoded = Data(base64Encoded: value.filter { !$0.isWhitespace }) else { throw fail("\(field) is not base64") }
            return String(decoding: decoded, as: UTF8.self)
        }
        var chosen: [(String, [String: Any])] = contexts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let clusterName {
            let current = (root["current-context"] as? String) ?? ""
            guard let context = contexts[current] ?? (contexts.count == 1 ? contexts.first?.value : nil) else {
                throw fail("kube_cluster_name is set, so the kubeconfig needs a current-context naming one of its contexts")
            }
            chosen = [(clusterName, context)]
        }
        guard !chosen.isEmpty else { throw fail("no contexts: add one per cluster the service should serve") }
        return try chosen.map { name, context in
            try ResourceName.validate(name, kind: "Kubernetes cluster name (context \(name))")
            guard let clusterKey = context["cluster"] as? String, let cluster = clusters[clusterKey] else {
                throw fail("context \(name) names no cluster of the file")
            }
            let user = (context["user"] as? String).flatMap { users[$0] } ?? [:]
            guard let server = cluster["server"] as? String, let url = URL(string: server), url.scheme?.lowercased() == "https",
                let host = url.host, !host.isEmpty
            else {
                throw fail("cluster \(clusterKey): server must be an https:// URL of the API server")
            }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.applicationProtocols = ["http/1.1"]
            do {
                if let ca = try file(cluster["certificate-authority"]) ?? (try data(cluster["certificate-authority-data"], field: "certificate-authority-data")) {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
                }
                if (cluster["insecure-skip-tls-verify"] as? Bool) == true { tls.certificateVerification = .none }
                if let certificate = try file(user["client-certificate"]) ?? (try data(user["client-certificate-data"], field: "client-certificate-data")) {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
                }
                if let key = try file(user["client-key"]) ?? (try data(user["client-key-data"], field: "client-key-data")) {
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
                }
            } catch let error as TeleportError {
                throw error
            } catch {
                throw fail("the certificates or key of context \(name) cannot be loaded: \(error)")
            }
            var token = user["token"] as? String
            if token == nil, let tokenFile = try file(user["tokenFile"]) { token = tokenFile.trimmingCharacters(in: .whitespacesAndNewlines) }
            let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: tls)
            } catch {
                throw fail("the TLS settings of context \(name) cannot be used: \(error)")
            }
            let path = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
            return KubeCluster(
                name: name, server: server, host: bare, port: url.port ?? 443, pathPrefix: path, token: token, tls: context,
                serverName: (cluster["tls-server-name"] as? String) ?? (IPAddressBytes.parse(bare) == nil ? bare : nil))
        }
    }
}
