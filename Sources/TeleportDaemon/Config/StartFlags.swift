/// The flags of `teleport start`, as parsed by the command line; they override `teleport.yaml`.
public struct StartFlags: Sendable, Equatable {
    public var configPath: String?
    public var debug = false
    public var roles: String?
    public var nodeName: String?
    public var authServer: String?
    public var token: String?
    public var caPin: String?
    public var labels: String?
    public var listenIP: String?
    public var advertiseIP: String?
    public var diagAddr: String?
    public var pidFile: String?
    public var bootstrap: String?
    public var dataDir: String?
    /// `teleport db start`: the database to serve (the daemon then runs the database service only).
    public var database: DatabaseFlags?

    /// Creates empty flags.
    public init() {}
}

/// The flags of `teleport db start`: one database served by a database service of its own.
public struct DatabaseFlags: Sendable, Equatable {
    /// `--name`.
    public var name: String
    /// `--protocol`: postgres or mysql.
    public var `protocol`: String
    /// `--uri`: host:port.
    public var uri: String
    /// `--description`.
    public var description: String?
    /// `--labels`: static labels, k=v,k2=v2.
    public var labels: String?
    /// `--ca-cert-file`: the CA that signs the database's certificate (the cluster's db CA otherwise).
    public var caCertFile: String?

    /// The flags.
    public init(name: String, protocol: String, uri: String) {
        self.name = name
        self.protocol = `protocol`
        self.uri = uri
    }
}
