import Foundation
import Hummingbird
import Logging
import NIOCore
import TeleportAPI

/// JSON replies of the auth API.
enum APIResponse {
    static func json(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The most bytes of one chunk of ``jsonArray(of:)``.
    static let chunkBytes = 64 * 1024

    /// A JSON array of `elements` (each already JSON), written in chunks of about ``chunkBytes``.
    static func jsonArray(of elements: [Data]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let length = 2 + elements.reduce(0) { $0 + $1.count } + max(elements.count - 1, 0)
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: length) { writer in
            var chunk = ByteBuffer()
            chunk.reserveCapacity(chunkBytes)
            chunk.writeInteger(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { chunk.writeInteger(UInt8(ascii: ",")) }
                chunk.writeBytes(element)
                if chunk.readableBytes >= chunkBytes {
                    try await writer.write(chunk)
                    chunk.clear()
                }
            }
            chunk.writeInteger(UInt8(ascii: "]"))
            try await writer.write(chunk)
            try await writer.finish(nil)
        })
    }

    static func raw(_ data: Data, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json<T: Encodable>(_ value: T) throws -> Response {
        json(try ResourceCodec.json(value))
    }

    static func error(_ error: TeleportError) -> Response {
        let body = AuthAPI.ErrorResponse(code: error.code.rawValue, message: error.message)
        let data = (try? ResourceCodec.json(body)) ?? Data()
        return json(data, status: HTTPResponse.Status(code: error.code.httpStatus))
    }

    /// Runs `body`, turning a ``TeleportError`` into its JSON reply, a body over the route's limit
    /// into a 413, and anything else into a 500 whose message hides internals.
    static func handling(_ context: AuthRequestContext, _ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as TeleportError {
            if error.code == .internalError {
                context.logger.error("request failed", metadata: ["tp.error": "\(error.message)"])
            }
            return Self.error(error)
        } catch is NIOTooManyBytesError {
            // A body over the route's limit is the caller's fault: 413, not a 500.
            let body = AuthAPI.ErrorResponse(
                code: TeleportError.Code.limitExceeded.rawValue,
                message: "the request body is larger than this route accepts; send a smaller one")
            return json((try? ResourceCodec.json(body)) ?? Data(), status: .contentTooLarge)
        } catch {
            context.logger.error("request failed", metadata: ["tp.error": "\(error)"])
            return Self.error(TeleportError.internalError("internal error; see the auth service's log"))
        }
    }
}
