//! JSON-RPC 2.0 framing for the control socket: one object per line.
//!
//! Owns parsing of request lines and building of response and notification
//! lines; knows nothing about sockets, tasks or what the methods do.

use serde::Serialize;
use serde_json::Value;

/// Longest request line the daemon reads, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

use super::request::METHODS;

/// One parsed request line.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine {
    /// `None` for a notification: the caller wants no response.
    pub id: Option<Value>,
    pub method: String,
    /// `Value::Null` when the request had no `params`.
    pub params: Value,
}

/// A JSON-RPC error object; `message` is written for the operator.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
    /// Application error: the daemon understood the request and said no.
    pub const REFUSED: i64 = -32000;

    fn new(code: i64, message: String) -> RpcError {
        RpcError {
            code,
            message,
            data: None,
        }
    }

    pub fn parse_error(detail: impl std::fmt::Display) -> RpcError {
        RpcError::new(
            Self::PARSE_ERROR,
            format!("this is not JSON: {detail}; send one JSON-RPC 2.0 object per line"),
        )
    }

    pub fn invalid_request(detail: impl std::fmt::Display) -> RpcError {
        RpcError::new(Self::INVALID_REQUEST, format!("invalid request: {detail}"))
    }

    pub fn method_not_found(name: &str) -> RpcError {
        RpcError {
            code: Self::METHOD_NOT_FOUND,
            message: format!("unknown method {name:?}; methods: {}", METHODS.join(", ")),
            data: Some(serde_json::json!({ "methods": METHODS })),
        }
    }

    pub fn invalid_params(detail: impl std::fmt::Display) -> RpcError {
        RpcError::new(Self::INVALID_PARAMS, format!("invalid params: {detail}"))
    }

    pub fn internal(detail: impl std::fmt::Display) -> RpcError {
        RpcError::new(Self::INTERNAL, format!("internal error: {detail}"))
    }

    pub fn line_too_long() -> RpcError {
        RpcError::new(
            Self::INVALID_REQUEST,
            format!("request longer than {MAX_LINE} bytes refused"),
        )
    }

    pub fn refused(detail: impl std::fmt::Display) -> RpcError {
        RpcError::new(Self::REFUSED, detail.to_string())
    }
}

/// Parses one line (without its newline) into a request.
pub fn parse_request(line: &[u8]) -> Result<RequestLine, RpcError> {
    let value: Value = serde_json::from_slice(line).map_err(RpcError::parse_error)?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            return Err(RpcError::invalid_request(
                "batch arrays are not supported; send one request object per line",
            ))
        }
        _ => return Err(RpcError::invalid_request("a request must be a JSON object")),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::invalid_request(r#"missing "jsonrpc": "2.0""#));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(RpcError::invalid_request(r#""method" must be a string"#)),
        None => return Err(RpcError::invalid_request(r#"missing "method""#)),
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(RpcError::invalid_request(
                r#""id" must be a string, a number or null"#,
            ))
        }
    };
    let params = match object.remove("params") {
        None => Value::Null,
        Some(params @ (Value::Object(_) | Value::Array(_) | Value::Null)) => params,
        Some(_) => {
            return Err(RpcError::invalid_request(
                r#""params" must be an object or an array"#,
            ))
        }
    };
    Ok(RequestLine { id, method, params })
}

#[derive(Serialize)]
struct Response<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

#[derive(Serialize)]
struct Notification<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    params: Value,
}

fn to_line(value: &impl Serialize) -> String {
    // Serializing values built from `Value` and strings cannot fail, and
    // serde_json escapes newlines, so the result is always one line.
    serde_json::to_string(value).expect("JSON-RPC message serializes")
}

/// A success response line, without trailing newline.
pub fn response_ok(id: &Value, result: Value) -> String {
    to_line(&Response {
        jsonrpc: "2.0",
        id,
        result: Some(result),
        error: None,
    })
}

/// An error response line; `id` is `None` (sent as null) when the request's
/// id could not be read.
pub fn response_err(id: Option<&Value>, err: &RpcError) -> String {
    to_line(&Response {
        jsonrpc: "2.0",
        id: id.unwrap_or(&Value::Null),
        result: None,
        error: Some(err),
    })
}

/// A notification line (no id), used for subscription events.
pub fn notification(method: &str, params: Value) -> String {
    to_line(&Notification {
        jsonrpc: "2.0",
        method,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_with_id_and_params_parses() {
        let req = parse_request(br#"{"jsonrpc":"2.0","id":7,"method":"history","params":{"n":3}}"#)
            .unwrap();
        assert_eq!(
            req,
            RequestLine {
                id: Some(json!(7)),
                method: "history".into(),
                params: json!({"n":3})
            }
        );
    }

    #[test]
    fn request_without_id_is_a_notification() {
        let req = parse_request(br#"{"jsonrpc":"2.0","method":"status"}"#).unwrap();
        assert_eq!(req.id, None);
        assert_eq!(req.params, Value::Null);
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let err = parse_request(b"hello").unwrap_err();
        assert_eq!(err.code, -32700);
        assert!(
            err.message.starts_with("this is not JSON: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_version_batch_and_bad_method_are_invalid_requests() {
        for line in [
            &br#"{"id":1,"method":"status"}"#[..],
            br#"[{"jsonrpc":"2.0","id":1,"method":"status"}]"#,
            br#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            br#"{"jsonrpc":"2.0","id":{},"method":"status"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"status","params":3}"#,
            b"42",
        ] {
            assert_eq!(parse_request(line).unwrap_err().code, -32600);
        }
    }

    #[test]
    fn unknown_method_message_lists_methods() {
        let err = RpcError::method_not_found("foo");
        assert_eq!(err.code, -32601);
        assert!(err
            .message
            .starts_with(r#"unknown method "foo"; methods: status, "#));
    }

    #[test]
    fn responses_are_single_lines() {
        assert_eq!(
            response_ok(&json!(1), json!({"a":"x\ny"})),
            r#"{"jsonrpc":"2.0","id":1,"result":{"a":"x\ny"}}"#
        );
        assert_eq!(
            response_err(None, &RpcError::refused("no")),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"no"}}"#
        );
        assert_eq!(
            notification("endpoints.changed", json!([])),
            r#"{"jsonrpc":"2.0","method":"endpoints.changed","params":[]}"#
        );
    }
}
