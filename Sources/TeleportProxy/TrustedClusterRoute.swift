import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI
import TeleportAuthClient

/// `POST /webapi/trustedclusters/validate`: a leaf cluster's auth service asks this (root)
/// cluster to trust it. The request carries the root's `trusted_cluster` token and the leaf's
/// public CAs; the proxy adds the caller's address and passes it to its auth service, which checks
/// and spends the token, and answers with the root's CAs sealed with the token. No client
/// certificate: the token is the credential, as for joining.
struct TrustedClusterRoute: Sendable {
    let auth: AuthClient
    let logger: Logger

    /// The largest request: two CAs' public halves, even in a rotation, are a few kilobytes.
    static let maxBodyBytes = 64 * 1024

    func register(on router: Router<ProxyRequestContext>) {
        router.post("webapi/trustedclusters/validate") { request, context in await validate(request, context: context) }
    }

    func validate(_ request: Request, context: ProxyRequestContext) async -> Response {
        var request = request
        var validate: AuthAPI.ValidateTrustRequest
        do {
            let body = try await request.boundedBody(limit: Self.maxBodyBytes)
            validate = try ResourceCodec.jsonDecoder().decode(AuthAPI.ValidateTrustRequest.self, from: Data(body.readableBytesView))
        } catch let error as TeleportError {
            return WebResponse.jsonError(error, status: error.code == .limitExceeded ? .contentTooLarge : nil)
        } catch {
            return WebResponse.jsonError(TeleportError.badParameter("the trust request is not valid JSON of a leaf's token and CAs"))
        }
        validate.remoteAddress = context.clientAddress
        do {
            return WebResponse.json(try ResourceCodec.json(try await auth.validateTrust(validate)))
        } catch let error as TeleportError {
            logger.info("a trust request was refused", metadata: ["tp.error": "\(error.message)", "tp.client.addr": "\(context.clientAddress ?? "")"])
            return WebResponse.jsonError(error)
        } catch {
            return WebResponse.jsonError(TeleportError.internalError("internal error; see the proxy's log"))
        }
    }
}
