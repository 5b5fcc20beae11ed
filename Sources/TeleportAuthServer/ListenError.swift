import NIOCore
public import TeleportAPI

/// One-line errors for listeners that cannot start.
public enum ListenError {
    /// Describes a bind failure naming the address and the configuration key to change.
    public static func describe(_ error: any Error, address: String, key: String) -> TeleportError {
        let text: String
        if let io = error as? IOError {
            switch io.errnoCode {
            case 98: text = "address already in use (is another teleport running? change \(key))"
            case 13: text = "permission denied (ports below 1024 need root; change \(key))"
            case 99: text = "the address is not on this host (change \(key))"
            default: text = "\(io) (change \(key))"
            }
        } else {
            text = "\(error) (change \(key))"
        }
        return TeleportError.connectionProblem("cannot listen on \(address): \(text)")
    }
}
