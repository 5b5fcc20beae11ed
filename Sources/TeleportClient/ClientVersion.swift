import TeleportAPI

/// What `tsh version` prints.
public enum ClientVersion {
    /// The version line.
    public static var line: String { "Teleport v\(TeleportVersion.version) swift (tsh)" }
}
