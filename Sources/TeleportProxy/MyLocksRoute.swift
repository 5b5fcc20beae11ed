import Foundation
import Hummingbird
import NIOCore
import NIOSSL
import TeleportAPI
import TeleportCrypto
import X509

/// `GET /webapi/locks/mine?login=LOGIN`: the locks in force that target the logged-in user (the
/// one in the TLS client certificate, verified against the user CA by the listener), so that
/// `tsh ssh` can say why a node or the proxy refused it, with the lock's own message.
///
/// Only the caller's locks are answered: those naming the caller's user, and those naming the
/// login asked without naming a user, when the caller's certificate lists that login. A lock on
/// another user, on a login the caller cannot use, or on a node alone is never shown.
struct MyLocksRoute {
    let clusterName: String
    /// The locks in force now.
    let locks: @Sendable () async -> [Lock]

    func register(on router: Router<ProxyRequestContext>) {
        router.get("webapi/locks/mine") { request, context -> Response in
            do {
                let identity = try await NodesRoute.user(context, clusterName: clusterName)
                let asked = request.uri.queryParameters.get("login")
                let mine = Self.mine(await locks(), user: identity.username, logins: identity.logins, login: asked)
                return WebResponse.json(try ResourceCodec.json(mine))
            } catch let error as TeleportError {
                return WebResponse.jsonError(error)
            }
        }
    }

    /// The locks among `locks` that target `user` (whose certificate lists `logins`) logging in
    /// as `login`.
    static func mine(_ locks: [Lock], user: String, logins: [String], login: String?) -> [WebAPI.MyLock] {
        let login = login.flatMap { logins.contains($0) ? $0 : nil }
        return locks.filter { lock in
            let target = lock.spec.target
            if let locked = target.user, locked != user { return false }
            if let locked = target.login, locked != login { return false }
            return target.user != nil || target.login != nil
        }.map {
            WebAPI.MyLock(
                name: $0.name, user: $0.spec.target.user, login: $0.spec.target.login, message: $0.spec.message,
                expires: $0.metadata.expires)
        }
    }
}
