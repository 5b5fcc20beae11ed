public import Foundation
import TeleportAPI

/// The settings of `teleport.yaml`, typed. Parsing lives in `FileConfig+YAML.swift`.
public struct FileConfig: Sendable, Equatable {
    /// The `teleport:` section.
    public var teleport = Global()
    /// `auth_service:`.
    public var auth = AuthService()
    /// `ssh_service:`.
    public var ssh = SSHService()
    /// `proxy_service:`.
    public var proxy = ProxyService()
    /// `db_service:`.
    public var db = DatabaseServiceConfig()
    /// `app_service:`.
    public var app = AppServiceConfig()
    /// `kubernetes_service:`.
    public var kube = KubeServiceConfig()
    /// Documented keys we accept but do not act on, one line each for the log.
    public var warnings: [String] = []

    /// Creates the defaults (every service on, default ports).
    public init() {}

    /// The `teleport:` section.
    public struct Global: Sendable, Equatable {
        public var nodeName: String?
        public var dataDir: String?
        public var pidFile: String?
        public var authToken: String?
        public var caPins: [String] = []
        public var authServers: [String] = []
        /// `teleport.proxy_server` (config v3): the proxy's web address (default port 3080) an
        /// agent joins through and keeps its reverse tunnel to (without `auth_servers`, it also
        /// reaches auth through it).
        public var proxyServer: String?
        public var advertiseIP: String?
        public var diagAddr: String?
        public var log = Log()
        public var storage = Storage()
        public var connectionLimits = ConnectionLimits()
        /// `teleport.shutdown_delay`: how long a draining process (graceful restart or SIGQUIT)
        /// lets open sessions go on, in seconds (Teleport's default, 30 h).
        public var shutdownDelay: Double = 30 * 3600
    }

    /// `teleport.log`.
    public struct Log: Sendable, Equatable {
        /// `stderr`, `stdout`, `syslog` (treated as stderr) or a file path.
        public var output = "stderr"
        /// `DEBUG`, `INFO`, `WARN` or `ERROR`.
        public var severity = "INFO"
    }

    /// The state backend kind.
    public enum StorageType: String, Sendable, Equatable {
        /// Embedded SQLite in `data_dir` (the default).
        case sqlite
        /// PostgreSQL, for several auth servers.
        case postgres
        /// etcd v3 (``TeleportBackendEtcd``), for several auth servers.
        case etcd
    }

    /// `teleport.storage`.
    public struct Storage: Sendable, Equatable {
        public var type = StorageType.sqlite
        /// The SQLite file (default `data_dir/backend/sqlite.db`).
        public var path: String?
        /// PostgreSQL connection string.
        public var connString: String?
        /// Where audit events go (`file://DIR`, `stdout://`).
        public var auditEventsURIs: [String] = []
        /// `audit_failure`: what happens when the audit log cannot be written — `fail_closed`
        /// (the default: no new sessions) or `continue` (drop and count, with an alert).
        public var auditFailure = "fail_closed"
        /// Where session recordings go.
        public var auditSessionsURI: String?
        /// The default AWS region (`s3://` recordings without `region=`).
        public var region: String?
        /// etcd (`type: etcd`): the peers, `https://host:port`.
        public var peers: [String] = []
        /// etcd: the key every Teleport key is stored under.
        public var prefix = "/teleport/"
        /// etcd: the client certificate, its key and the CA that signs etcd's certificate.
        public var tlsCertFile: String?
        public var tlsKeyFile: String?
        public var tlsCAFile: String?
        /// etcd: password authentication (the password is read from `password_file`).
        public var username: String?
        public var passwordFile: String?
        /// etcd: accept any server certificate (not recommended).
        public var insecure = false
        /// etcd: the largest message accepted (default 2 MiB).
        public var etcdMaxClientMsgSizeBytes = 2 * 1024 * 1024
    }

    /// `teleport.connection_limits`.
    public struct ConnectionLimits: Sendable, Equatable {
        public var maxConnections = 15000
        public var maxUsers = 250
    }

    /// `auth_service:`.
    public struct AuthService: Sendable, Equatable {
        public var enabled = true
        public var clusterName: String?
        public var listenAddr = "0.0.0.0:3025"
        public var publicAddrs: [String] = []
        /// Static tokens, `"roles:value"`.
        public var tokens: [String] = []
        /// `authentication.type`: `local`, `github` or `oidc` (the default for `tsh login`).
        public var authenticationType = "local"
        /// `authentication.connector_name`: the default connector.
        public var connectorName: String?
        /// `authentication.local_auth`: false refuses password logins.
        public var localAuth = true
        public var secondFactor = "otp"
        /// `session_recording`: `node` (the default) or `off`.
        public var sessionRecording = "node"
        /// `web_idle_timeout` in seconds (nil: the default, 10 minutes).
        public var webIdleTimeout: Double?
    }

    /// One dynamic label command.
    public struct LabelCommand: Sendable, Equatable {
        public var name: String
        public var command: [String]
        public var period: Double
    }

    /// `ssh_service:`.
    public struct SSHService: Sendable, Equatable {
        public var enabled = true
        public var listenAddr = "0.0.0.0:3022"
        /// Whether `listen_addr` was set (a tunnelled node without it binds no port).
        public var listenAddrConfigured = false
        public var publicAddrs: [String] = []
        public var labels: [String: String] = [:]
        public var commands: [LabelCommand] = []
    }

    /// A certificate and key for the proxy's HTTPS listener.
    public struct KeyPair: Sendable, Equatable {
        public var keyFile: String
        public var certFile: String
    }

    /// `proxy_service:`.
    public struct ProxyService: Sendable, Equatable {
        public var enabled = true
        public var listenAddr = "0.0.0.0:3023"
        public var webListenAddr = "0.0.0.0:3080"
        public var tunnelListenAddr = "0.0.0.0:3024"
        /// `tunnel_public_addr`: where agents behind NAT dial their reverse tunnel (default port
        /// 3024), when it differs from the public host with the tunnel port (a load balancer).
        public var tunnelPublicAddr: String?
        public var publicAddrs: [String] = []
        public var httpsKeyPairs: [KeyPair] = []
        /// `postgres_listen_addr`: PostgreSQL clients' listener (nil: none).
        public var postgresListenAddr: String?
        /// `mysql_listen_addr`: MySQL/MariaDB clients' listener (nil: none; Teleport's usual port is 3036).
        public var mysqlListenAddr: String?
        /// `kube_listen_addr`: kubectl's own listener (nil: none; the web port always serves it).
        public var kubeListenAddr: String?
        /// The seed's `proxy_service.kubernetes.kubeconfig_file`: the proxy serves the kubeconfig's
        /// clusters itself (a Kubernetes service in the same process, on a loopback port).
        public var kubernetesKubeconfigFile: String?
        /// `proxy_listener_mode`: `multiplex` puts reverse tunnels on the web port.
        public var listenerMode = ListenerMode.separate

        /// `proxy_service.proxy_listener_mode`.
        public enum ListenerMode: String, Sendable, Equatable {
            /// Reverse tunnels on `tunnel_listen_addr` (unless it equals `web_listen_addr`).
            case separate
            /// Reverse tunnels on the web port, routed by ALPN.
            case multiplex
        }

        /// Whether reverse tunnels share the web port: `proxy_listener_mode: multiplex`, or
        /// `tunnel_listen_addr` equal to `web_listen_addr` (the seed's rule). No separate tunnel
        /// listener is bound then.
        public var multiplexed: Bool {
            if listenerMode == .multiplex { return true }
            guard let web = try? HostPort.parse(webListenAddr, defaultPort: 3080, key: "web_listen_addr"),
                let tunnel = try? HostPort.parse(tunnelListenAddr, defaultPort: 3024, key: "tunnel_listen_addr")
            else { return false }
            return web.port == tunnel.port && web.host == tunnel.host
        }
    }

    /// `db_service:` (off unless `enabled: true` or `--roles=db`).
    public struct DatabaseServiceConfig: Sendable, Equatable {
        public var enabled = false
        /// Where the proxy reaches the service (mutual TLS), default `0.0.0.0:3029`.
        public var listenAddr = "0.0.0.0:3029"
        /// Whether `listen_addr` was set (a service behind a reverse tunnel binds it only then).
        public var listenAddrConfigured = false
        /// `databases:`.
        public var databases: [DatabaseEntry] = []
    }

    /// One entry of `db_service.databases`.
    public struct DatabaseEntry: Sendable, Equatable {
        public var name: String
        public var description = ""
        public var `protocol`: String
        public var uri: String
        public var staticLabels: [String: String] = [:]
        /// `tls.mode`: `verify-full` (default), `verify-ca` or `insecure`.
        public var tlsMode = "verify-full"
        public var caCertFile: String?
        public var serverName: String?
        /// `dynamic_labels`: label commands, as `ssh_service.commands`.
        public var dynamicLabels: [LabelCommand] = []
    }

    /// `app_service:` (off unless `enabled: true` or `--roles=app`).
    public struct AppServiceConfig: Sendable, Equatable {
        public var enabled = false
        /// Where the proxy reaches the service (mutual TLS), default `0.0.0.0:3031`.
        public var listenAddr = "0.0.0.0:3031"
        /// `apps:`.
        public var apps: [AppEntry] = []
    }

    /// `kubernetes_service:` (off unless `enabled: true` or `--roles=kube`).
    public struct KubeServiceConfig: Sendable, Equatable {
        public var enabled = false
        /// Where the proxy reaches the service (mutual TLS), default `0.0.0.0:3027`.
        public var listenAddr = "0.0.0.0:3027"
        /// Whether `listen_addr` was written (a tunnelled service binds no port otherwise).
        public var listenAddrConfigured = false
        /// `kubeconfig_file`: the API servers and the credentials the service uses.
        public var kubeconfigFile: String?
        /// `kube_cluster_name`: the name of the one cluster (the kubeconfig's current context).
        public var kubeClusterName: String?
        /// `labels`: static labels of every cluster the service serves.
        public var labels: [String: String] = [:]
        /// `commands`: dynamic labels of every cluster, a command's output each.
        public var commands: [LabelCommand] = []
    }

    /// One entry of `app_service.apps`.
    public struct AppEntry: Sendable, Equatable {
        public var name: String
        public var description = ""
        public var uri: String
        public var publicAddr: String?
        public var labels: [String: String] = [:]
        public var insecureSkipVerify = false
        /// `rewrite.redirect`: more internal hosts whose redirects are rewritten.
        public var redirect: [String] = []
        /// `rewrite.headers`: `[name, value]` pairs added to every request.
        public var headers: [[String]] = []
    }
}
