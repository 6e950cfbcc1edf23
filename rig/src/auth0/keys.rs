//! Key material: the RSA keys tokens are signed with, and their public JWKs.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// One RSA signing key and its public JWK.
pub(super) struct SigningKey {
    pub(super) kid: String,
    pub(super) encoding: EncodingKey,
    pub(super) decoding: DecodingKey,
    pub(super) jwk: Jwk,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key whose `kid` is its RFC 7638 thumbprint, with a self-signed
    /// certificate for `domain` in `x5c` as Auth0 publishes one.
    pub(super) fn generate(domain: &str) -> anyhow::Result<Self> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .context("generating an RSA key")?;
        let encoding = EncodingKey::from_rsa_pem(key_pair.serialize_pem().as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, domain);
        let certificate = params.self_signed(&key_pair)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.x509_chain = Some(vec![STANDARD.encode(certificate.der())]);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        Ok(Self {
            kid,
            encoding,
            decoding,
            jwk,
        })
    }
}
