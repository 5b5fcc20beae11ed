public import Foundation
import TeleportAPI
public import TeleportCrypto

/// Why a server refused every key, in words a user understands, from what the client knows (the
/// SSH protocol carries no reason with a refusal): an expired certificate, a login the
/// certificate does not list, or else what the server may have decided (a lock, the roles).
public enum SSHRefusal {
    /// The message for a refusal by `what` (`node luna`, `the proxy proxy.example.com`) of
    /// `login` with `certificate` at `now`.
    public static func message(login: String, what: String, certificate: SSHCertificate?, now: Date) -> String {
        guard let certificate else {
            return "access denied: \(what) refused your key for the login \"\(login)\": log in with tsh login to get a certificate"
        }
        if now >= certificate.validBefore {
            return "access denied: your certificate expired at \(RFC3339.format(certificate.validBefore)): run tsh login to get a new one"
        }
        let logins = certificate.validPrincipals
        if !logins.contains(login) {
            let listed = logins.isEmpty ? "none" : logins.joined(separator: ", ")
            return "access denied: your certificate does not allow the login \"\(login)\" on \(what); your logins are: \(listed)"
        }
        let user = certificate.keyID
        return "access denied: \(what) refused the login \"\(login)\" for \(user): the user or the login may be locked (tctl lock), "
            + "or your roles may not allow this node; an administrator can see why with "
            + "tctl access explain --user=\(user) --node=\(nodeName(what)) --login=\(login)"
    }

    private static func nodeName(_ what: String) -> String {
        what.hasPrefix("node ") ? String(what.dropFirst("node ".count)) : "NODE"
    }
}
