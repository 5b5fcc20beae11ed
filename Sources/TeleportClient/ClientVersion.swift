import TeleportAPI

/// What `tsh version` prints. Login and sessions arrive with later parts of the project.
public enum ClientVersion {
    /// The version line.
    public static var line: String { "Teleport v\(TeleportVersion.version) swift (tsh)" }
}
