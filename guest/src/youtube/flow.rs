//! The state machine: visitor id → VISIONOS player → watch page → player script.
//!
//! Everything a later step needs travels in the state blob (versioned JSON, validated on
//! resume): the job, warnings so far, and per stage only the small facts it needs.

use serde::{Deserialize, Serialize};

use super::player_response::{self, Parsed, Source};
use super::{Job, Response, Step, YoutubeError, cipher, client, watch_page};
use crate::types::valid_vid;

/// Version tag of the state blob; a blob from another version is refused.
const STATE_VERSION: u32 = 1;
/// Largest state blob accepted on resume.
const MAX_STATE: usize = 1 << 20;
/// Longest watch page or player script read.
const MAX_PAGE: usize = 8 << 20;
/// Most warnings carried (each is short).
const MAX_WARNINGS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    video_id: String,
    /// `youtube_url` without trailing slashes.
    base: String,
    now_unix: u64,
    warnings: Vec<String>,
    stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    /// Waiting for `visitor_id`.
    VisitorId,
    /// Waiting for the VISIONOS player response.
    Player,
    /// Waiting for the watch page; `first` is why VISIONOS failed.
    WatchPage { first: YoutubeError },
    /// Waiting for the player script to decipher `parsed`.
    PlayerScript { player: String, parsed: Parsed },
}

pub(super) fn start(job: &Job) -> Step {
    let base = job.youtube_url.trim_end_matches('/');
    if !valid_vid(job.video_id) {
        return bad_job(format!("invalid video id {:?}", truncate(job.video_id, 40)));
    }
    if !valid_base(base) {
        return bad_job(format!("invalid youtube_url {:?}", truncate(base, 80)));
    }
    let state = State {
        version: STATE_VERSION,
        video_id: job.video_id.to_string(),
        base: base.to_string(),
        now_unix: job.now_unix,
        warnings: Vec::new(),
        stage: Stage::VisitorId,
    };
    let request = client::visitor_id(&state.base);
    fetch(request, state)
}

pub(super) fn resume(state: &[u8], response: Result<Response, String>) -> Step {
    let state = match decode(state) {
        Ok(state) => state,
        Err(message) => {
            return Step::Failed(YoutubeError::BadResponse {
                what: "state".into(),
                message,
            });
        }
    };
    let State {
        video_id,
        base,
        now_unix,
        warnings,
        stage,
        ..
    } = state;
    let flow = Flow {
        video_id,
        base,
        now_unix,
    };
    match stage {
        Stage::VisitorId => flow.after_visitor_id(response, warnings),
        Stage::Player => flow.after_player(response, warnings),
        Stage::WatchPage { first } => flow.after_watch_page(response, first, warnings),
        Stage::PlayerScript { player, parsed } => {
            flow.after_player_script(response, player, parsed, warnings)
        }
    }
}

fn bad_job(message: String) -> Step {
    Step::Failed(YoutubeError::BadJob { message })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// An http(s) URL without query, fragment, whitespace or controls.
fn valid_base(base: &str) -> bool {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    rest.is_some_and(|host| {
        !host.is_empty()
            && host.len() <= 256
            && host
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '"' | '\\'))
    })
}

fn decode(bytes: &[u8]) -> Result<State, String> {
    if bytes.len() > MAX_STATE {
        return Err(format!("state longer than {MAX_STATE} bytes"));
    }
    let state: State = serde_json::from_slice(bytes).map_err(|e| format!("corrupt state: {e}"))?;
    if state.version != STATE_VERSION {
        return Err(format!(
            "state version {} is not {STATE_VERSION}",
            state.version
        ));
    }
    if !valid_vid(&state.video_id) || !valid_base(&state.base) {
        return Err("state holds an invalid job".into());
    }
    if state.warnings.len() > MAX_WARNINGS {
        return Err("state holds too many warnings".into());
    }
    Ok(state)
}

/// Serialises the state next to its request.
fn fetch(request: super::Request, state: State) -> Step {
    match serde_json::to_vec(&state) {
        Ok(state) => Step::Fetch { request, state },
        Err(e) => Step::Failed(YoutubeError::BadResponse {
            what: "state".into(),
            message: format!("cannot serialise: {e}"),
        }),
    }
}

fn warn(warnings: &mut Vec<String>, warning: String) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(truncate(&warning, 300));
    }
}

/// A 2xx body, or the error of a failed request.
fn body(response: Result<Response, String>, what: &str) -> Result<Vec<u8>, YoutubeError> {
    match response {
        Err(message) => Err(YoutubeError::Http {
            what: what.into(),
            status: None,
            message: truncate(&message, 200),
        }),
        Ok(r) if (200..300).contains(&r.status) => Ok(r.body),
        Ok(r) => Err(YoutubeError::Http {
            what: what.into(),
            status: Some(r.status),
            message: "unexpected status".into(),
        }),
    }
}

/// A page as text (cut at [`MAX_PAGE`] bytes is an error, not a truncation).
fn page_text(body: &[u8], what: &str) -> Result<String, YoutubeError> {
    if body.len() > MAX_PAGE {
        return Err(YoutubeError::BadResponse {
            what: what.into(),
            message: format!("longer than {MAX_PAGE} bytes"),
        });
    }
    Ok(String::from_utf8_lossy(body).into_owned())
}

/// The most informative of the VISIONOS error and the watch page's: the page's if it says
/// why the video cannot play or its cipher is new, else VISIONOS's playability, else the
/// page's.
fn most_informative(first: YoutubeError, page: YoutubeError) -> YoutubeError {
    match (&first, &page) {
        (_, YoutubeError::Unplayable { .. } | YoutubeError::Cipher { .. }) => page,
        (YoutubeError::Unplayable { .. }, _) => first,
        _ => page,
    }
}

/// The job part of the state.
struct Flow {
    video_id: String,
    base: String,
    now_unix: u64,
}

impl Flow {
    fn state(&self, warnings: Vec<String>, stage: Stage) -> State {
        State {
            version: STATE_VERSION,
            video_id: self.video_id.clone(),
            base: self.base.clone(),
            now_unix: self.now_unix,
            warnings,
            stage,
        }
    }

    fn after_visitor_id(
        &self,
        response: Result<Response, String>,
        mut warnings: Vec<String>,
    ) -> Step {
        let visitor = body(response, client::VISITOR_ID)
            .and_then(|b| player_response::json(&b, client::VISITOR_ID))
            .and_then(|v| {
                v.pointer("/responseContext/visitorData")
                    .and_then(|d| d.as_str())
                    .filter(|d| is_header_safe(d))
                    .map(String::from)
                    .ok_or_else(|| YoutubeError::BadResponse {
                        what: client::VISITOR_ID.into(),
                        message: "no responseContext.visitorData".into(),
                    })
            });
        let visitor = match visitor {
            Ok(v) => Some(v),
            Err(e) => {
                warn(&mut warnings, format!("going on without visitorData: {e}"));
                None
            }
        };
        let request = client::player(&self.base, &self.video_id, visitor.as_deref());
        fetch(request, self.state(warnings, Stage::Player))
    }

    fn after_player(&self, response: Result<Response, String>, mut warnings: Vec<String>) -> Step {
        let result = body(response, client::PLAYER)
            .and_then(|b| player_response::json(&b, client::PLAYER))
            .and_then(|v| {
                player_response::playability(&v, client::PLAYER)?;
                let mut w = Vec::new();
                let parsed = player_response::parse(&v, &self.video_id, client::PLAYER, &mut w)?;
                if !parsed.has_url() {
                    return Err(YoutubeError::BadResponse {
                        what: client::PLAYER.into(),
                        message: "no format with a url".into(),
                    });
                }
                Ok((parsed, w))
            });
        match result {
            Ok((parsed, w)) => {
                for w in w {
                    warn(&mut warnings, w);
                }
                if parsed.has_cipher() {
                    warn(
                        &mut warnings,
                        format!(
                            "client {}: ciphered formats dropped",
                            client::VISIONOS_CLIENT
                        ),
                    );
                }
                n_warning(&parsed, client::VISIONOS_CLIENT, "client", &mut warnings);
                Step::Done(parsed.into_info(
                    self.now_unix,
                    client::visionos_media_headers(),
                    warnings,
                ))
            }
            Err(first) => {
                warn(
                    &mut warnings,
                    format!(
                        "client {} failed, trying the watch page: {first}",
                        client::VISIONOS_CLIENT
                    ),
                );
                let request = client::watch_page(&self.base, &self.video_id);
                fetch(request, self.state(warnings, Stage::WatchPage { first }))
            }
        }
    }

    fn after_watch_page(
        &self,
        response: Result<Response, String>,
        first: YoutubeError,
        mut warnings: Vec<String>,
    ) -> Step {
        let what = client::WATCH_PAGE;
        let result = body(response, what)
            .and_then(|b| page_text(&b, what))
            .and_then(|page| {
                let json = watch_page::player_response(&page).map_err(|message| {
                    YoutubeError::BadResponse {
                        what: what.into(),
                        message,
                    }
                })?;
                let v = player_response::json(json.as_bytes(), what)?;
                player_response::playability(&v, what)?;
                let parsed = player_response::parse(&v, &self.video_id, what, &mut warnings)?;
                Ok((parsed, watch_page::player_script(&page)))
            });
        let (parsed, script) = match result {
            Ok(found) => found,
            Err(page) => return Step::Failed(most_informative(first, page)),
        };
        if parsed.formats.is_empty() && !parsed.live {
            return Step::Failed(most_informative(
                first,
                YoutubeError::BadResponse {
                    what: what.into(),
                    message: "no format with a url or a cipher".into(),
                },
            ));
        }
        if !parsed.has_cipher() {
            let player = script.map_or_else(|| "unknown".to_string(), |(_, id)| id);
            n_warning(&parsed, &player, "player", &mut warnings);
            return Step::Done(parsed.into_info(
                self.now_unix,
                client::browser_media_headers(),
                warnings,
            ));
        }
        let Some((path, player)) = script else {
            return Step::Failed(YoutubeError::BadResponse {
                what: what.into(),
                message: "ciphered formats but no player script URL".into(),
            });
        };
        let request = client::player_script(&self.base, &path);
        fetch(
            request,
            self.state(warnings, Stage::PlayerScript { player, parsed }),
        )
    }

    fn after_player_script(
        &self,
        response: Result<Response, String>,
        player: String,
        mut parsed: Parsed,
        mut warnings: Vec<String>,
    ) -> Step {
        let what = client::PLAYER_SCRIPT;
        let script = match body(response, what).and_then(|b| page_text(&b, what)) {
            Ok(script) => script,
            Err(e) => return Step::Failed(e),
        };
        let mut signer = match cipher::find(&script) {
            Ok(transform) => cipher::Signer::new(transform),
            Err(message) => return Step::Failed(YoutubeError::Cipher { player, message }),
        };
        for format in &mut parsed.formats {
            let Source::Cipher { s, sp, url } = &format.source else {
                continue;
            };
            match signer.signed_url(url, sp, s) {
                Ok(signed) => format.source = Source::Url(signed),
                Err(e) => warn(
                    &mut warnings,
                    format!("player {player}: itag {} dropped: {e}", format.itag),
                ),
            }
        }
        n_warning(&parsed, &player, "player", &mut warnings);
        Step::Done(parsed.into_info(self.now_unix, client::browser_media_headers(), warnings))
    }
}

/// One warning if any URL carries an `n` this policy cannot transform (throttled media).
fn n_warning(parsed: &Parsed, name: &str, kind: &str, warnings: &mut Vec<String>) {
    let has_n = parsed.formats.iter().any(|f| match &f.source {
        Source::Url(url) => player_response::query_param(url, "n").is_some(),
        Source::Cipher { .. } => false,
    });
    if has_n {
        warn(
            warnings,
            format!("n parameter of {kind} {name} not transformed: media may be throttled"),
        );
    }
}

/// Printable ASCII only: it goes into a header.
fn is_header_safe(value: &str) -> bool {
    !value.is_empty() && value.len() <= 512 && value.bytes().all(|b| b.is_ascii_graphic())
}
