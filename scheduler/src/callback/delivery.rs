//! One HTTP delivery attempt of a callback.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::redirect::Policy;
use reqwest::{Client, Url};

use super::{sign, CallbackError, DELIVERY_HEADER, SIGNATURE_HEADER, USER_AGENT};
use crate::outbox::PendingCallback;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// What went wrong, for the log and the outbox row (never the body).
    pub(super) reason: String,
    /// Retrying cannot help (the URL is unusable): abandon at once.
    pub(super) permanent: bool,
}

/// The client of every callback: `timeout` bounds both connecting and the whole exchange, and
/// redirects are not followed, so a receiver answering 3xx has not accepted the callback and
/// the attempt counts as failed (following it would re-send a signed body to a host the task's
/// submitter did not name).
pub(super) fn build_client(timeout: Duration) -> Result<Client, CallbackError> {
    Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(Policy::none())
        .build()
        .map_err(CallbackError::Client)
}

/// POSTs `callback` once; `Ok` when the receiver answered 2xx. The response body is not read.
pub(super) async fn attempt(
    client: &Client,
    callback: &PendingCallback,
    secret: Option<&[u8]>,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut request = client
        .post(&callback.url)
        .header(CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, callback.id.to_string())
        .body(callback.body.clone());
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, sign(secret, callback.body.as_bytes()));
    }
    let response = request
        .send()
        .await
        .map_err(|error| send_failure(&error, timeout))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(Failure {
            reason: format!("receiver answered {status} (redirects are not followed)"),
            permanent: false,
        })
    } else {
        Err(Failure {
            reason: format!("receiver answered {status}"),
            permanent: false,
        })
    }
}

/// Describes a failed send, with the causes reqwest wraps (its own message is only "error
/// sending request"); the URL is left out because the caller logs a redacted one.
fn send_failure(error: &reqwest::Error, timeout: Duration) -> Failure {
    if error.is_builder() {
        return Failure {
            reason: format!("invalid callback URL: {}", causes(error)),
            permanent: true,
        };
    }
    let reason = if error.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f64())
    } else if error.is_connect() {
        format!("cannot connect: {}", causes(error))
    } else {
        causes(error)
    };
    Failure {
        reason,
        permanent: false,
    }
}

/// The error's message followed by those of its sources, without the URL.
fn causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// `url` for logs, with a password in it replaced (callback URLs may carry credentials). Text
/// that does not parse as a URL is returned as is: nothing could be sent to it either.
pub(super) fn loggable_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password only fails for URLs that cannot have one, and this one has.
                let _ = parsed.set_password(Some("REDACTED"));
            }
            // Receivers often authenticate callbacks with a token in the query string.
            if parsed.query().is_some() {
                parsed.set_query(Some("REDACTED"));
            }
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_url_redacts_the_password_and_the_query() {
        assert_eq!(
            loggable_url("https://user:hunter2@example.com/hook?token=abc"),
            "https://user:REDACTED@example.com/hook?REDACTED"
        );
        assert_eq!(
            loggable_url("http://example.com/hook"),
            "http://example.com/hook"
        );
        assert_eq!(loggable_url("not a url"), "not a url");
    }
}
