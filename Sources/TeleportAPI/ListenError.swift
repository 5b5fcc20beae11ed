#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One wording for every listener that cannot start (auth 3025, proxy web 3080, proxy SSH 3023,
/// node SSH 3022, diagnostics 3000): `cannot listen on ADDRESS: CAUSE (HINT; change KEY)`.
public enum ListenError {
    /// Describes a bind failure. `errno` is the system error code when the caller knows it (NIO's
    /// `IOError.errnoCode`); `key` names the setting that chose the address.
    public static func describe(_ error: any Error, errno code: Int32?, address: String, key: String) -> TeleportError {
        let text: String
        if let code {
            if code == EADDRINUSE {
                text = "address already in use (is another teleport running? stop it or change \(key))"
            } else if code == EACCES {
                text = "permission denied (ports below 1024 need root; change \(key))"
            } else if code == EADDRNOTAVAIL {
                text = "the address is not on this host (change \(key))"
            } else {
                text = "\(String(cString: strerror(code))) (change \(key))"
            }
        } else {
            text = "\(error) (change \(key))"
        }
        return TeleportError.connectionProblem("cannot listen on \(address): \(text)")
    }
}
