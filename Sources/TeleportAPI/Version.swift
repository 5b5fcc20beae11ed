/// The software version, printed by `teleport version`, `tsh version` and `tctl version`.
public enum TeleportVersion {
    /// The release.
    public static let version = "0.1.0"
    /// The API version path component.
    public static let apiVersion = "v1"
}
