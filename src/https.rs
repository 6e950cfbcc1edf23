//! The HTTPS client of `authedapi call` (the issuer's discovery document and token
//! endpoint, the API's routes): the AWS SDK's own connector (hyper 1, rustls with aws-lc),
//! so the binary carries one HTTP client and one TLS stack. Like curl, it goes through
//! `HTTPS_PROXY` unless `NO_PROXY` says otherwise, and trusts the system's CAs
//! (`SSL_CERT_FILE` replaces them).

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

use crate::aws::error::error_chain;

/// A request that could not be sent, or whose answer could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// An answer: its status and its whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub body: Vec<u8>,
}

fn connector() -> Connector {
    Connector::builder()
        .proxy_config(ProxyConfig::from_env())
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build()
}

/// Send `request` and read the whole answer.
pub async fn send(request: http::Request<Vec<u8>>) -> Result<Answer, HttpError> {
    let request = HttpRequest::try_from(request.map(SdkBody::from))
        .map_err(|e| HttpError(format!("the request: {e}")))?;
    let response = connector()
        .call(request)
        .await
        .map_err(|e| HttpError(error_chain(&e)))?;
    let status = http::StatusCode::from_u16(response.status().as_u16())
        .map_err(|e| HttpError(e.to_string()))?;
    let body = ByteStream::new(response.into_body())
        .collect()
        .await
        .map_err(|e| HttpError(error_chain(&e)))?
        .to_vec();
    Ok(Answer { status, body })
}

/// A GET of `url`.
pub async fn get(url: &str) -> Result<Answer, HttpError> {
    let request = http::Request::get(url)
        .body(Vec::new())
        .map_err(|e| HttpError(format!("{url}: {e}")))?;
    send(request).await
}
