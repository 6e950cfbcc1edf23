//! Which route API Gateway sends a request to: route keys as segments, and the one
//! precedence among routes matching a request, as API Gateway's documentation for HTTP
//! APIs states it ("Routing API requests"): segment by segment, a literal beats a
//! `{parameter}`, which beats a greedy `{proxy+}`; then a method beats `ANY`; `$default`
//! comes last. `authedapi call` picks its route with it, and [`crate::route_access`] checks
//! each role's policy against it. (The rig's data plane keeps its own, written from the
//! same documentation: the judge never shares the product's code.)

/// One segment of a route key's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param,
    /// `{name+}` (last only): one or more segments. Also IAM's `*` in a resource pattern.
    Greedy,
}

/// A route key: a method (None: `ANY`) and the segments of its path; or `$default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteKey {
    pub method: Option<String>,
    pub segments: Vec<Segment>,
    pub default: bool,
}

/// How a route ranks among the routes matching one request: higher wins.
pub type Rank = (bool, Vec<u8>, bool);

impl RouteKey {
    /// `"GET /pets/{id}"`, `"ANY /{proxy+}"` or `"$default"`.
    pub fn parse(key: &str) -> Self {
        let Some((method, path)) = key.split_once(' ') else {
            return Self {
                method: None,
                segments: vec![Segment::Greedy],
                default: true,
            };
        };
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) if name.ends_with('+') => Segment::Greedy,
                    Some(_) => Segment::Param,
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Self {
            method: (method != "ANY").then(|| method.to_owned()),
            segments,
            default: false,
        }
    }

    /// API Gateway's precedence: not `$default`, then segment by segment (2 literal, 1
    /// parameter, 0 greedy, compared in order, not added up), then a method over `ANY`.
    pub fn rank(&self) -> Rank {
        let scores = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Param => 1,
                Segment::Greedy => 0,
            })
            .collect();
        (!self.default, scores, self.method.is_some())
    }

    /// Whether requests of `method` (upper case) may take this route.
    pub fn answers(&self, method: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
    }

    /// Whether `path` (its segments, see [`path_segments`]) is one of this route's paths.
    pub fn matches_path(&self, path: &[&str]) -> bool {
        if self.default {
            return true;
        }
        if path.iter().any(|s| s.is_empty()) {
            return false;
        }
        let mut rest = path;
        for segment in &self.segments {
            match segment {
                Segment::Greedy => return !rest.is_empty(),
                Segment::Param if !rest.is_empty() => rest = &rest[1..],
                Segment::Literal(l) if rest.first() == Some(&l.as_str()) => rest = &rest[1..],
                _ => return false,
            }
        }
        rest.is_empty()
    }
}

/// The segments of a request path, without its query string: `/a/b?x=1` is `["a", "b"]`,
/// `/` none. An empty segment (`//`, a trailing `/`) stays, and only `$default` takes it.
pub fn path_segments(path: &str) -> Vec<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Vec::new();
    }
    path.split('/').collect()
}

/// The index in `routes` of the route API Gateway sends `method` `path` to, if any.
pub fn route_for(routes: &[RouteKey], method: &str, path: &str) -> Option<usize> {
    let method = method.to_ascii_uppercase();
    let segments = path_segments(path);
    routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.answers(&method) && r.matches_path(&segments))
        .max_by(|(_, a), (_, b)| a.rank().cmp(&b.rank()))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick<'a>(keys: &[&'a str], method: &str, path: &str) -> Option<&'a str> {
        let routes: Vec<RouteKey> = keys.iter().map(|k| RouteKey::parse(k)).collect();
        route_for(&routes, method, path).map(|i| keys[i])
    }

    /// The example of API Gateway's documentation ("Routing API requests", HTTP APIs).
    #[test]
    fn the_documented_example_routes_as_api_gateway_says() {
        let routes = [
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ];
        assert_eq!(pick(&routes, "GET", "/pets/dog/1"), Some("GET /pets/dog/1"));
        assert_eq!(
            pick(&routes, "GET", "/pets/dog/2"),
            Some("GET /pets/dog/{id}")
        );
        assert_eq!(
            pick(&routes, "GET", "/pets/cat/1"),
            Some("GET /pets/{proxy+}")
        );
        assert_eq!(pick(&routes, "POST", "/test/5"), Some("ANY /{proxy+}"));
        assert_eq!(pick(&routes, "GET", "/"), Some("$default"));
    }

    /// Segment by segment, not a sum: `/a/{x}/{y}` (literal first) beats `/{p}/b/c` (two
    /// literals, later), as API Gateway routes it.
    #[test]
    fn the_first_segment_that_differs_decides() {
        let routes = ["GET /{p}/b/c", "GET /a/{x}/{y}"];
        assert_eq!(pick(&routes, "GET", "/a/b/c"), Some("GET /a/{x}/{y}"));
        assert_eq!(pick(&routes, "GET", "/z/b/c"), Some("GET /{p}/b/c"));
        let greedy = ["GET /{p}/b/c", "GET /a/{proxy+}"];
        assert_eq!(pick(&greedy, "GET", "/a/b/c"), Some("GET /a/{proxy+}"));
    }

    #[test]
    fn a_method_beats_any_only_between_equal_paths() {
        let routes = ["ANY /items/{id}", "GET /items/{id}", "ANY /items/special"];
        assert_eq!(pick(&routes, "GET", "/items/1"), Some("GET /items/{id}"));
        assert_eq!(pick(&routes, "DELETE", "/items/1"), Some("ANY /items/{id}"));
        assert_eq!(
            pick(&routes, "GET", "/items/special"),
            Some("ANY /items/special")
        );
    }

    #[test]
    fn greedy_needs_a_segment_and_empty_segments_match_nothing_but_default() {
        let routes = ["GET /files/{proxy+}"];
        assert_eq!(pick(&routes, "GET", "/files"), None);
        assert_eq!(pick(&routes, "GET", "/files/"), None);
        assert_eq!(
            pick(&routes, "get", "/files/a/b?x=1"),
            Some("GET /files/{proxy+}")
        );
        assert_eq!(pick(&["GET /a/{x}"], "GET", "/a//"), None);
    }
}
