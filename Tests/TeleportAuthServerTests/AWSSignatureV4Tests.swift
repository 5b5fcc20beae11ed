import Foundation
import TeleportAuthServer
import Testing

/// Signature V4 against known answers: AWS's own S3 example ("GET Object" with a Range header, from
/// the Signature V4 documentation) and requests signed by botocore's `S3SigV4Auth` at the same
/// instant (2013-05-24T00:00:00Z) with the documentation's example keys.
@Suite("AWS Signature V4")
struct AWSSignatureV4Tests {
    static let credentials = AWSSignatureV4.Credentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var request: AWSSignatureV4.Request
        var token: String?
        var signedHeaders: String
        var signature: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "AWS's GET Object example",
            request: .init(
                method: "GET", path: "/test.txt",
                headers: [
                    ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", AWSSignatureV4.emptyPayloadSHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ], payloadSHA256: AWSSignatureV4.emptyPayloadSHA256),
            signedHeaders: "host;range;x-amz-content-sha256;x-amz-date",
            signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        Case(
            name: "path style, an escaped key",
            request: .init(
                method: "GET", path: "/recordings/sessions/a%20b.events.gz",
                headers: [("Host", "127.0.0.1:9000"), ("X-Amz-Content-SHA256", AWSSignatureV4.emptyPayloadSHA256), ("X-Amz-Date", "20130524T000000Z")],
                payloadSHA256: AWSSignatureV4.emptyPayloadSHA256),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date",
            signature: "2a10c451d23507fd98d367098589a8e423574af354e47d09ebd967b003541319"),
        Case(
            name: "PUT with a body and a content type",
            request: .init(
                method: "PUT", path: "/recordings/sessions/x.events.gz",
                headers: [
                    ("Host", "127.0.0.1:9000"), ("Content-Type", "application/octet-stream"),
                    ("X-Amz-Content-SHA256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"), ("X-Amz-Date", "20130524T000000Z"),
                ], payloadSHA256: AWSSignatureV4.sha256Hex(Data("Welcome to Amazon S3.".utf8))),
            signedHeaders: "content-type;host;x-amz-content-sha256;x-amz-date",
            signature: "aa747177273f7e6c3a86e6d5b7ca6204faeadc8825f6bfd60b9c94345492f51a"),
        Case(
            name: "a query and a session token",
            request: .init(
                method: "GET", path: "/recordings", query: [("prefix", "sessions/"), ("list-type", "2")],
                headers: [
                    ("Host", "127.0.0.1:9000"), ("X-Amz-Content-SHA256", AWSSignatureV4.emptyPayloadSHA256), ("X-Amz-Date", "20130524T000000Z"),
                    ("X-Amz-Security-Token", "SESSIONTOKEN"),
                ], payloadSHA256: AWSSignatureV4.emptyPayloadSHA256),
            signedHeaders: "host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
            signature: "a25c8c35ea84dee51b7a5a81ef165ab747291e894e3a15a014d06d6727b29e9d"),
    ]

    @Test(arguments: cases)
    func signsAsAWSDoes(_ example: Case) {
        let header = AWSSignatureV4.authorization(example.request, credentials: Self.credentials, region: "us-east-1", date: Self.date)
        #expect(
            header
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=\(example.signedHeaders), Signature=\(example.signature)"
        )
    }

    @Test func aWrongSecretOrRegionChangesTheSignature() {
        let request = Self.cases[0].request
        let right = AWSSignatureV4.authorization(request, credentials: Self.credentials, region: "us-east-1", date: Self.date)
        var wrong = Self.credentials
        wrong.secretAccessKey += "x"
        #expect(AWSSignatureV4.authorization(request, credentials: wrong, region: "us-east-1", date: Self.date) != right)
        #expect(AWSSignatureV4.authorization(request, credentials: Self.credentials, region: "eu-west-1", date: Self.date) != right)
    }

    @Test func uriEncoding() {
        #expect(AWSSignatureV4.uriEncode("a b/c~d_e-f.g", keepSlash: true) == "a%20b/c~d_e-f.g")
        #expect(AWSSignatureV4.uriEncode("sessions/", keepSlash: false) == "sessions%2F")
        #expect(AWSSignatureV4.uriEncode("é+=", keepSlash: false) == "%C3%A9%2B%3D")
        #expect(AWSSignatureV4.amzDate(Self.date) == "20130524T000000Z")
    }
}
