/// The `otpauth://` URI an authenticator app enrols a TOTP secret from (the Key Uri Format of
/// Google Authenticator): label `<cluster>:<user>`, SHA-1, 6 digits, 30 s.
enum OTPAuthURI {
    /// The URI for `secret` (base32) of `user` in `cluster`; every part is percent-encoded.
    static func make(cluster: String, user: String, secret: String) -> String {
        let label = "\(HTMLText.percentEncode(cluster)):\(HTMLText.percentEncode(user))"
        return "otpauth://totp/\(label)?secret=\(HTMLText.percentEncode(secret))&issuer=\(HTMLText.percentEncode(cluster))"
            + "&algorithm=SHA1&digits=6&period=30"
    }
}
