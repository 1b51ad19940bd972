//! One module per subcommand.

pub mod capacity;
pub mod consumer;
pub mod cost;
pub mod demo;
pub mod pattern;
pub mod progress;
pub mod reingest;
pub mod replay;
pub mod schema;
pub mod subscribe;
pub mod tail;
pub mod up;

/// An endpoint flag's value as a URL: `127.0.0.1:4566` (no scheme, as
/// `--listen` prints it) means `http://127.0.0.1:4566`, as curl takes it.
pub fn endpoint_url(value: &str) -> String {
    if value.contains("://") {
        value.to_string()
    } else {
        format!("http://{value}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_endpoint_without_a_scheme_is_http() {
        assert_eq!(
            super::endpoint_url("127.0.0.1:4577"),
            "http://127.0.0.1:4577"
        );
        assert_eq!(super::endpoint_url("https://h:1"), "https://h:1");
    }
}
