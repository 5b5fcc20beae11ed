public import Foundation
public import TeleportAPI
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

    /// Whether a refusal of `login` with `certificate` at `now` is one the client cannot explain
    /// by itself (a valid certificate that lists the login): then a lock may be why, and `tsh`
    /// asks the proxy for the caller's own locks (``lockMessage(_:user:)``).
    public static func mayBeLocked(login: String, certificate: SSHCertificate?, now: Date) -> Bool {
        guard let certificate else { return false }
        return now < certificate.validBefore && certificate.validPrincipals.contains(login)
    }

    /// The refusal for the locks in force that stop `user` (the proxy's `GET /webapi/locks/mine`),
    /// e.g. `access denied: user joe is locked: incident 42 (lock NAME, until TIME); ask an
    /// administrator (tctl lock ls / tctl rm lock/NAME)`; nil when there is none. Text from the
    /// cluster (names, messages) goes through ``TerminalText/escape(_:)``.
    public static func lockMessage(_ locks: [WebAPI.MyLock], user: String) -> String? {
        guard let first = locks.first else { return nil }
        let parts = locks.map { lock -> String in
            var target: String
            switch (lock.user, lock.login) {
            case (.some(let user), .some(let login)): target = "user \(user) with the login \"\(login)\""
            case (.some(let user), nil): target = "user \(user)"
            case (nil, .some(let login)): target = "the login \"\(login)\""
            case (nil, nil): target = "user \(user)"
            }
            target = TerminalText.escape(target) + " is locked"
            if let message = lock.message, !message.isEmpty { target += ": " + TerminalText.escape(message) }
            let until = lock.expires.map { ", until \(RFC3339.format($0))" } ?? ""
            return target + " (lock \(TerminalText.escape(lock.name))\(until))"
        }
        return "access denied: " + parts.joined(separator: "; ")
            + "; ask an administrator (tctl lock ls / tctl rm lock/\(TerminalText.escape(first.name)))"
    }

    private static func nodeName(_ what: String) -> String {
        what.hasPrefix("node ") ? String(what.dropFirst("node ".count)) : "NODE"
    }
}
