public import Foundation
public import TeleportAPI
public import TeleportAuthClient
import TeleportClient
import Yams

/// How `tctl` finds the auth service and its identity: `--auth-server` + `-i` from anywhere, or on
/// the auth host the admin identity in `data_dir/keys` found through `-c/--config`.
public struct AdminConnection: Sendable {
    /// The global options of `tctl`.
    public struct Options: Sendable {
        public var configPath: String?
        public var authServer: String?
        public var identityFile: String?
        /// Creates options.
        public init(configPath: String? = nil, authServer: String? = nil, identityFile: String? = nil) {
            self.configPath = configPath
            self.authServer = authServer
            self.identityFile = identityFile
        }
    }

    /// Builds a client from the options.
    public static func client(_ options: Options) throws -> AuthClient {
        if let identityFile = options.identityFile {
            guard let authServer = options.authServer else {
                throw TeleportError.badParameter("-i/--identity needs --auth-server=HOST:3025 too")
            }
            return try AuthClient(addresses: Self.addresses(authServer), identity: try IdentityFile.load(path: identityFile).clientIdentity)
        }
        let local = try LocalSettings.read(configPath: options.configPath)
        let keys = URL(fileURLWithPath: local.dataDir).appendingPathComponent("keys")
        let identity: ClientIdentity
        do {
            identity = try ClientIdentity.loadPair(directory: keys, name: "admin")
        } catch let error as TeleportError {
            if error.code == .notFound {
                throw TeleportError.accessDenied(
                    "no admin identity in \(keys.path): run tctl on the auth server as the user that runs teleport "
                        + "(with -c pointing to its teleport.yaml), or use --auth-server with -i IDENTITY")
            }
            throw error
        }
        return try AuthClient(addresses: options.authServer.map(Self.addresses) ?? [local.authAddress], identity: identity)
    }

    /// `--auth-server=a:3025,b:3025`: several auth servers of one cluster, tried in turn.
    static func addresses(_ flag: String) -> [String] {
        flag.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// The bits of `teleport.yaml` that `tctl` needs: the data dir and the auth listen address.
struct LocalSettings {
    var dataDir: String
    var authAddress: String
    /// `auth_service.public_addr` (a string or a list).
    var publicAddrs: [String] = []
    /// `teleport.advertise_ip`.
    var advertiseIP: String?
    /// Whether `auth_service.listen_addr` is every address (`0.0.0.0`, `[::]`): `authAddress` is then loopback.
    var listensEverywhere = false

    static func read(configPath: String?) throws -> LocalSettings {
        let path = configPath ?? (FileManager.default.fileExists(atPath: "/etc/teleport.yaml") ? "/etc/teleport.yaml" : nil)
        var dataDir = defaultDataDir()
        var listen = "127.0.0.1:3025"
        var publicAddrs: [String] = []
        var advertiseIP: String?
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw TeleportError.notFound("cannot read the configuration file \(path)")
            }
            let tree: Any?
            do {
                tree = try Yams.load(yaml: text)
            } catch {
                throw TeleportError.badParameter("\(path): not valid YAML")
            }
            let root = tree as? [String: Any] ?? [:]
            if let teleport = root["teleport"] as? [String: Any], let dir = teleport["data_dir"] as? String {
                dataDir = dir
            }
            if let teleport = root["teleport"] as? [String: Any], let ip = teleport["advertise_ip"] as? String, !ip.isEmpty {
                advertiseIP = ip
            }
            if let auth = root["auth_service"] as? [String: Any] {
                if let address = auth["listen_addr"] as? String { listen = address }
                if let one = auth["public_addr"] as? String {
                    publicAddrs = [one]
                } else if let list = auth["public_addr"] as? [Any] {
                    publicAddrs = list.compactMap { $0 as? String }
                }
            }
        }
        var everywhere = false
        if listen.hasPrefix("0.0.0.0:") {
            listen = "127.0.0.1:" + listen.dropFirst("0.0.0.0:".count)
            everywhere = true
        }
        if listen.hasPrefix("[::]:") {
            listen = "[::1]:" + listen.dropFirst("[::]:".count)
            everywhere = true
        }
        return LocalSettings(
            dataDir: dataDir, authAddress: listen, publicAddrs: publicAddrs, advertiseIP: advertiseIP, listensEverywhere: everywhere)
    }

    static func defaultDataDir() -> String {
        if geteuid() == 0 { return "/var/lib/teleport" }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share/teleport").path
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
