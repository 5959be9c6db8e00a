//! The OpenAPI description as data: its operations, their documented responses, and a small
//! validator that checks a real response (status, required headers, content type, JSON body)
//! against them. It covers the JSON Schema keywords the description uses for responses
//! (`$ref`, `type`, `nullable`, `enum`, `required`, `properties`, `additionalProperties`,
//! `items`, `minimum`, `maximum`, `maxLength`, `minItems`); `pattern` is not checked here
//! (schemathesis checks it, see scripts/contract).

use std::collections::BTreeSet;

use reqwest::header::HeaderMap;
use serde_json::Value;

/// The description, as compiled into the server.
pub(crate) const SPEC_YAML: &str = include_str!("../../openapi.yaml");

/// HTTP methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The parsed description.
pub(crate) struct Spec {
    document: Value,
}

impl Spec {
    /// Parses [`SPEC_YAML`].
    pub(crate) fn load() -> Spec {
        let document = serde_norway::from_str(SPEC_YAML).expect("openapi.yaml is valid YAML");
        Spec { document }
    }

    /// Every operation as (`GET`, `/api/v1/task/{taskId}`).
    pub(crate) fn operations(&self) -> BTreeSet<(String, String)> {
        let mut operations = BTreeSet::new();
        let paths = self.document["paths"]
            .as_object()
            .expect("openapi.yaml has paths");
        for (path, item) in paths {
            for method in METHODS {
                if item.get(method).is_some() {
                    operations.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        operations
    }

    /// The operation object of `method` `path`.
    pub(crate) fn operation(&self, method: &str, path: &str) -> &Value {
        let operation = &self.document["paths"][path][method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "openapi.yaml has no operation {method} {path}"
        );
        operation
    }

    /// Whether the operation needs credentials (the global security applies unless the
    /// operation overrides it with an empty list).
    pub(crate) fn is_secured(&self, method: &str, path: &str) -> bool {
        match self.operation(method, path).get("security") {
            Some(Value::Array(requirements)) => !requirements.is_empty(),
            _ => self.document["security"]
                .as_array()
                .is_some_and(|requirements| !requirements.is_empty()),
        }
    }

    /// The documented status codes of an operation.
    pub(crate) fn statuses(&self, method: &str, path: &str) -> BTreeSet<u16> {
        self.operation(method, path)["responses"]
            .as_object()
            .expect("every operation has responses")
            .keys()
            .map(|code| {
                code.parse().unwrap_or_else(|_| {
                    panic!("{method} {path}: response key {code:?} is not a status")
                })
            })
            .collect()
    }

    /// Every (method, path, status) the description documents.
    pub(crate) fn documented_statuses(&self) -> BTreeSet<(String, String, u16)> {
        let mut all = BTreeSet::new();
        for (method, path) in self.operations() {
            for status in self.statuses(&method, &path) {
                all.insert((method.clone(), path.clone(), status));
            }
        }
        all
    }

    /// Follows a local `$ref` (`#/components/...`, also into a schema's properties).
    pub(crate) fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        let mut current = value;
        while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references are supported: {reference}"));
            current = self
                .document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {reference}"));
        }
        current
    }

    /// The schema of a component (`TaskV1`).
    pub(crate) fn schema(&self, name: &str) -> &Value {
        let schema = &self.document["components"]["schemas"][name];
        assert!(schema.is_object(), "openapi.yaml has no schema {name}");
        schema
    }

    /// Checks a response of `method` `path` against the description: its status is documented,
    /// the documented required headers are present (with their `enum` values), the content type
    /// is a documented one (no body when none is documented) and a JSON body conforms to the
    /// schema. Returns a description of every mismatch.
    pub(crate) fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let context = format!("{method} {path} answered {status}");
        let responses = &self.operation(method, path)["responses"];
        let Some(response) = responses.get(status.to_string()) else {
            return Err(format!(
                "{context}, which the description does not document"
            ));
        };
        let response = self.resolve(response);
        let mut problems = Vec::new();
        if let Some(documented) = response.get("headers").and_then(Value::as_object) {
            for (name, header) in documented {
                let header = self.resolve(header);
                if header["required"] != Value::Bool(true) {
                    continue;
                }
                match headers
                    .get(name.as_str())
                    .and_then(|value| value.to_str().ok())
                {
                    None => problems.push(format!("required header {name} is missing")),
                    Some(value) => {
                        if let Err(error) =
                            self.conforms(&header["schema"], &Value::from(value), name)
                        {
                            problems.push(error);
                        }
                    }
                }
            }
        }
        let content_type = headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        match response.get("content").and_then(Value::as_object) {
            None if body.is_empty() => {}
            None => problems.push(format!("no body is documented, got {} bytes", body.len())),
            Some(content) => match content.get(media_type) {
                None => problems.push(format!(
                    "content type {content_type:?} is not one of {:?}",
                    content.keys().collect::<Vec<_>>()
                )),
                Some(media) if media_type == "application/json" => {
                    match serde_json::from_slice::<Value>(body) {
                        Ok(value) => {
                            if let Err(error) = self.conforms(&media["schema"], &value, "body") {
                                problems.push(error);
                            }
                        }
                        Err(error) => problems.push(format!("body is not JSON: {error}")),
                    }
                }
                Some(_) => {}
            },
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{context}: {}", problems.join("; ")))
        }
    }

    /// Checks `value` against `schema`; `at` names the value in the error.
    pub(crate) fn conforms(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if value.is_null() && schema["nullable"] == Value::Bool(true) {
            return Ok(());
        }
        if let Some(expected) = schema.get("type").and_then(Value::as_str) {
            let matches = match expected {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                other => panic!("unsupported schema type {other}"),
            };
            if !matches {
                return Err(format!("{at}: expected {expected}, got {value}"));
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        self.bounds(schema, value, at)?;
        if let Some(object) = value.as_object() {
            self.object_conforms(schema, object, at)?;
        }
        if let (Some(items), Some(elements)) = (schema.get("items"), value.as_array()) {
            for (index, element) in elements.iter().enumerate() {
                self.conforms(items, element, &format!("{at}[{index}]"))?;
            }
        }
        Ok(())
    }

    fn bounds(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        if let Some(number) = value.as_f64() {
            if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64) {
                let exclusive = schema["exclusiveMinimum"] == Value::Bool(true);
                if number < minimum || (exclusive && number == minimum) {
                    return Err(format!("{at}: {number} is below the minimum {minimum}"));
                }
            }
            if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64) {
                if number > maximum {
                    return Err(format!("{at}: {number} is above the maximum {maximum}"));
                }
            }
        }
        if let (Some(text), Some(max)) = (
            value.as_str(),
            schema.get("maxLength").and_then(Value::as_u64),
        ) {
            if text.chars().count() as u64 > max {
                return Err(format!("{at}: {text:?} is longer than {max}"));
            }
        }
        if let (Some(items), Some(min)) = (
            value.as_array(),
            schema.get("minItems").and_then(Value::as_u64),
        ) {
            if (items.len() as u64) < min {
                return Err(format!("{at}: fewer than {min} items"));
            }
        }
        Ok(())
    }

    fn object_conforms(
        &self,
        schema: &Value,
        object: &serde_json::Map<String, Value>,
        at: &str,
    ) -> Result<(), String> {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().expect("required names are strings");
            if !object.contains_key(key) {
                return Err(format!("{at}: required key {key:?} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, member) in object {
            let path = format!("{at}.{key}");
            match (
                properties.and_then(|known| known.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => self.conforms(property, member, &path)?,
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{at}: key {key:?} is not in the description"))
                }
                (None, Some(additional)) if additional.is_object() => {
                    self.conforms(additional, member, &path)?
                }
                (None, _) => {}
            }
        }
        Ok(())
    }
}
