//! The watch page: `ytInitialPlayerResponse = {…}` and the player script path.
//!
//! The JSON is found with a JSON-aware scan from its `{` (strings, escapes and nesting
//! respected) rather than a regex: the text after it varies (`;</script>`, `;var meta`).

/// Longest player response JSON read from a page.
const MAX_JSON: usize = 4 << 20;
/// Deepest JSON nesting the scan follows.
const MAX_DEPTH: usize = 512;
/// Occurrences of a marker examined.
const MAX_MARKERS: usize = 64;

/// The raw JSON text of `ytInitialPlayerResponse` in a watch page.
pub(crate) fn player_response(page: &str) -> Result<&str, String> {
    const MARKER: &str = "ytInitialPlayerResponse";
    for (idx, _) in page.match_indices(MARKER).take(MAX_MARKERS) {
        // Only an assignment of an object literal: not `=window.ytInitialPlayerResponse`,
        // not `window['ytInitialPlayerResponse']`, not `= null`.
        let rest = page.get(idx + MARKER.len()..).unwrap_or("");
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = rest.trim_start();
        if !value.starts_with('{') {
            continue;
        }
        let start = page.len() - value.len();
        let len = json_value_len(value.as_bytes())?;
        return page
            .get(start..start + len)
            .ok_or_else(|| "player response is not text".to_string());
    }
    Err("no ytInitialPlayerResponse object".into())
}

/// The length of the JSON object or array at the start of `bytes`.
pub(crate) fn json_value_len(bytes: &[u8]) -> Result<usize, String> {
    let mut closers: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().take(MAX_JSON) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if closers.len() >= MAX_DEPTH {
                    return Err("JSON nested too deep".into());
                }
                closers.push(if b == b'{' { b'}' } else { b']' });
            }
            b'}' | b']' => {
                if closers.pop() != Some(b) {
                    return Err(format!("unbalanced JSON at byte {i}"));
                }
                if closers.is_empty() {
                    return Ok(i + 1);
                }
            }
            _ if closers.is_empty() => return Err("not a JSON object".into()),
            _ => {}
        }
    }
    if bytes.len() > MAX_JSON {
        Err(format!("player response longer than {MAX_JSON} bytes"))
    } else {
        Err("player response JSON ends early".into())
    }
}

/// The player script path and the player id, from `"jsUrl":"/s/player/ID/…/base.js"`
/// (or `PLAYER_JS_URL`); `None` if absent or not a player path.
pub(crate) fn player_script(page: &str) -> Option<(String, String)> {
    ["\"jsUrl\":", "\"PLAYER_JS_URL\":"]
        .iter()
        .flat_map(|key| page.match_indices(*key).take(MAX_MARKERS))
        .find_map(|(idx, key)| {
            let value = page.get(idx + key.len()..)?.trim_start();
            let len = json_string_len(value.as_bytes())?;
            let path: String = serde_json::from_str(value.get(..len)?).ok()?;
            let id = player_id(&path)?;
            Some((path, id))
        })
}

/// The length of the JSON string literal at the start of `bytes` (at most 1 KiB).
fn json_string_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(1).take(1024) {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return Some(i + 1);
        }
    }
    None
}

/// The id in `/s/player/ID/…`, if `path` is a plain player path on the same host.
fn player_id(path: &str) -> Option<String> {
    let safe = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
    if !safe || path.contains("..") {
        return None;
    }
    let id = path.strip_prefix("/s/player/")?.split('/').next()?;
    let valid = (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    (valid && path.ends_with(".js")).then(|| id.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_exactly_one_json_value() {
        let page = r#"<script>var ytInitialPlayerResponse = {"a":"};</script>","b":"\"{[","c":[{"d":"\\"}],"e":"ü😀"};</script><script>var x = {"no":1};</script>"#;
        let json = player_response(page).unwrap();
        assert_eq!(
            json,
            r#"{"a":"};</script>","b":"\"{[","c":[{"d":"\\"}],"e":"ü😀"}"#
        );
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["b"], "\"{[");
        assert_eq!(v["c"][0]["d"], "\\");
    }

    #[test]
    fn skips_non_object_assignments() {
        let page = "window['ytInitialPlayerResponse'] = null;var ytInitialPlayerResponse=window.ytInitialPlayerResponse;\nytInitialPlayerResponse\n=\n{\"x\":[1,2]};var meta = {}";
        assert_eq!(player_response(page).unwrap(), "{\"x\":[1,2]}");
        assert!(player_response("var ytInitialPlayerResponse = null;").is_err());
        assert!(player_response("no player here").is_err());
    }

    #[test]
    fn rejects_broken_json() {
        assert!(player_response("ytInitialPlayerResponse = {\"a\":[}").is_err());
        assert!(player_response("ytInitialPlayerResponse = {\"a\":\"open").is_err());
        assert!(player_response("ytInitialPlayerResponse = {{{{").is_err());
        let deep = format!("ytInitialPlayerResponse = {{{}", "[".repeat(10_000));
        assert_eq!(player_response(&deep), Err("JSON nested too deep".into()));
        assert_eq!(json_value_len(b"{}x"), Ok(2));
        assert!(json_value_len(b"x{}").is_err());
    }

    #[test]
    fn finds_the_player_script() {
        let page =
            r#"..."jsUrl":"/s/player/2840754e/player_ias.vflset/en_US/base.js","cssUrl":"x""#;
        assert_eq!(
            player_script(page),
            Some((
                "/s/player/2840754e/player_ias.vflset/en_US/base.js".into(),
                "2840754e".into()
            ))
        );
        let escaped =
            r#""PLAYER_JS_URL":"\/s\/player\/c9168c90\/player_ias.vflset\/en_US\/base.js""#;
        assert_eq!(player_script(escaped).unwrap().1, "c9168c90");
        // Other hosts, traversal and odd ids are refused.
        for bad in [
            r#""jsUrl":"https://evil.example/s/player/1/base.js""#,
            r#""jsUrl":"/s/player/../../x/base.js""#,
            r#""jsUrl":"/s/player/ab?c/base.js""#,
            r#""jsUrl":"/s/player//base.js""#,
            r#""jsUrl":"/s/player/abc/base.css""#,
            r#""jsUrl":"#,
        ] {
            assert_eq!(player_script(bad), None, "{bad}");
        }
    }
}
