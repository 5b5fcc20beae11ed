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

    /// Creates empty flags.
    public init() {}
}
