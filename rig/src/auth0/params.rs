//! Request parameters (a query, a form or a JSON body) as Auth0 reads them.

use serde_json::{Map, Value};
use url::form_urlencoded;

/// Request parameters in their order, each name once; an empty value counts as absent
/// (RFC 6749, 3.1).
#[derive(Debug, Default)]
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn form(bytes: &[u8]) -> Result<Self, String> {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(bytes) {
            params.push(name.into_owned(), value.into_owned())?;
        }
        Ok(params)
    }

    pub(super) fn json(bytes: &[u8]) -> Result<Self, String> {
        let object: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|_| "The request body is not a JSON object".to_owned())?;
        let mut params = Self::default();
        for (name, value) in object {
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(format!("Invalid value for parameter: {name}")),
            };
            params.push(name, value)?;
        }
        Ok(params)
    }

    pub(super) fn push(&mut self, name: String, value: String) -> Result<(), String> {
        if self.0.iter().any(|(n, _)| *n == name) {
            return Err(format!("Duplicate parameter: {name}"));
        }
        self.0.push((name, value));
        Ok(())
    }

    pub(super) fn extend(&mut self, other: Params) -> Result<(), String> {
        other
            .0
            .into_iter()
            .try_for_each(|(name, value)| self.push(name, value))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The login form's username and password, apart from the authorization parameters.
    pub(super) fn take_credentials(self) -> (Params, (Option<String>, Option<String>)) {
        let (mut username, mut password) = (None, None);
        let mut rest = Vec::new();
        for (name, value) in self.0 {
            match name.as_str() {
                "username" => username = Some(value),
                "password" => password = Some(value),
                _ => rest.push((name, value)),
            }
        }
        (Params(rest), (username, password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth0_params_treat_empty_values_as_absent_and_refuse_duplicates() {
        let params = Params::form(b"a=1&b=&c=x+y%21").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y!"));
        assert!(Params::form(b"a=1&a=2").is_err());
        let json = Params::json(br#"{"a":"1","n":2,"z":null}"#).unwrap();
        assert_eq!(json.get("n"), Some("2"));
        assert_eq!(json.get("z"), None);
        assert!(Params::json(br#"{"a":{"b":1}}"#).is_err());
        assert!(Params::json(b"[1]").is_err());
    }
}
