//! The media types of the v1 APIs and payload decoding.

use serde::de::DeserializeOwned;

/// `application/json` (Mesos' JSON mapping of the protobuf messages).
pub const APPLICATION_JSON: &str = "application/json";
/// `application/x-protobuf` (protobuf binary).
pub const APPLICATION_PROTOBUF: &str = "application/x-protobuf";

/// One of the two media types of the v1 APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `application/json`.
    Json,
    /// `application/x-protobuf`.
    Protobuf,
}

impl MediaType {
    /// The media type string.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Json => APPLICATION_JSON,
            MediaType::Protobuf => APPLICATION_PROTOBUF,
        }
    }

    /// How a client reads the `Content-Type` of an answer: the media type before any `;`
    /// parameter, compared without regard to case.
    pub fn from_content_type(value: &str) -> Option<MediaType> {
        let mime = value.split(';').next().unwrap_or_default().trim();
        if mime.eq_ignore_ascii_case(APPLICATION_PROTOBUF) {
            Some(MediaType::Protobuf)
        } else if mime.eq_ignore_ascii_case(APPLICATION_JSON) {
            Some(MediaType::Json)
        } else {
            None
        }
    }

    /// How Mesos reads the `Content-Type` of a request: an exact byte comparison, so that a
    /// parameter (`; charset=utf-8`) or another case does not match.
    pub fn from_exact_header(value: &[u8]) -> Option<MediaType> {
        match value {
            b"application/json" => Some(MediaType::Json),
            b"application/x-protobuf" => Some(MediaType::Protobuf),
            _ => None,
        }
    }

    /// Decodes one message `M` encoded in this media type.
    pub fn decode<M>(self, payload: &[u8]) -> Result<M, String>
    where
        M: prost::Message + Default + DeserializeOwned,
    {
        match self {
            MediaType::Protobuf => M::decode(payload).map_err(|error| error.to_string()),
            MediaType::Json => {
                mesos_proto::json::from_slice(payload).map_err(|error| error.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::executor::{event, Event};
    use prost::Message;

    use super::*;

    #[test]
    fn answers_name_their_media_type_with_parameters_and_any_case() {
        assert_eq!(
            MediaType::from_content_type("application/x-protobuf"),
            Some(MediaType::Protobuf)
        );
        assert_eq!(
            MediaType::from_content_type("Application/JSON; charset=utf-8"),
            Some(MediaType::Json)
        );
        assert_eq!(MediaType::from_content_type("text/plain"), None);
        assert_eq!(MediaType::from_content_type(""), None);
    }

    #[test]
    fn requests_must_name_their_media_type_exactly() {
        assert_eq!(
            MediaType::from_exact_header(b"application/json"),
            Some(MediaType::Json)
        );
        assert_eq!(
            MediaType::from_exact_header(b"application/x-protobuf"),
            Some(MediaType::Protobuf)
        );
        assert_eq!(
            MediaType::from_exact_header(b"application/json; charset=utf-8"),
            None
        );
        assert_eq!(MediaType::from_exact_header(b"Application/JSON"), None);
    }

    #[test]
    fn payloads_decode_from_protobuf_and_json() {
        let heartbeat = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let binary = heartbeat.encode_to_vec();
        assert_eq!(MediaType::Protobuf.decode(&binary), Ok(heartbeat.clone()));
        assert_eq!(
            MediaType::Json.decode(br#"{"type":"HEARTBEAT"}"#),
            Ok(heartbeat)
        );
        assert!(MediaType::Json.decode::<Event>(b"{not json").is_err());
        assert!(MediaType::Protobuf
            .decode::<Event>(&[0xff, 0xff, 0xff])
            .is_err());
    }
}
