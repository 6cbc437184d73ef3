//! The HTML pages: plain, accessible markup (a `lang`, a `<title>`, labelled inputs, real forms
//! with buttons, no JavaScript). `maud` escapes every interpolated value.

use maud::{DOCTYPE, Markup, html};
use sessionbank_core::Timestamp;

/// One row of the "your sessions" table.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    /// `SessionId::short()`: enough to tell sessions apart, too little to take one over.
    pub(crate) short: String,
    pub(crate) created: Timestamp,
    pub(crate) last_seen: Timestamp,
    pub(crate) user_agent: Option<String>,
    /// Whether this is the session of the request that renders the page.
    pub(crate) current: bool,
}

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}\
nav a{margin-right:1rem}\
table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}\
form.inline{display:inline}\
button{font:inherit;padding:.2rem .8rem;white-space:nowrap}\
.error{border-left:4px solid #b00020;padding-left:1rem}\
";

fn layout(title: &str, owner: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sessionbank demo" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    nav aria-label="Site" {
                        a href="/" { "Home" }
                        @if owner.is_some() {
                            a href="/sessions" { "Your sessions" }
                        }
                    }
                }
                main { (body) }
                footer {
                    p { small { "sessionbank demo: sessions stored server-side, one signed cookie per browser." } }
                }
            }
        }
    }
}

fn sign_out_form() -> Markup {
    html! {
        form.inline method="post" action="/sign-out" {
            button type="submit" { "Sign out" }
        }
    }
}

/// `/`: the visit counter, and the signed-in state or the sign-in form.
pub(crate) fn home(visits: u64, owner: Option<&str>) -> Markup {
    let times = if visits == 1 { "time" } else { "times" };
    layout(
        "Home",
        owner,
        html! {
            h1 { "sessionbank demo" }
            p #visits { "You have visited this page " strong { (visits) } " " (times) "." }
            @if let Some(name) = owner {
                p #signed-in {
                    "Signed in as " strong { (name) } ". "
                    a href="/sessions" { "See your sessions" }
                }
                (sign_out_form())
            } @else {
                p #signed-out { "You are not signed in." }
                (sign_in_form())
            }
        },
    )
}

fn sign_in_form() -> Markup {
    html! {
        form #sign-in method="post" action="/sign-in" {
            p {
                label for="name" { "Sign in as (any name, 1 to 64 characters)" }
                " "
                input #name type="text" name="name" required maxlength="64" autocomplete="username";
            }
            p { button type="submit" { "Sign in" } }
        }
    }
}

/// `/sessions`: the signed-in user's live sessions.
pub(crate) fn sessions(owner: &str, rows: &[SessionRow]) -> Markup {
    let count = rows.len();
    let noun = if count == 1 { "session" } else { "sessions" };
    layout(
        "Your sessions",
        Some(owner),
        html! {
            h1 { "Your sessions" }
            p #signed-in { "Signed in as " strong { (owner) } ": " (count) " live " (noun) "." }
            table #sessions {
                caption { "Every browser where you are signed in" }
                thead {
                    tr {
                        th scope="col" { "Session" }
                        th scope="col" { "Created" }
                        th scope="col" { "Last seen" }
                        th scope="col" { "Browser" }
                        th scope="col" { "Action" }
                    }
                }
                tbody {
                    @for row in rows {
                        tr.session data-session=(row.short) {
                            td {
                                code.session-id { (row.short) }
                                @if row.current { " " strong.current { "(this session)" } }
                            }
                            td { (time_element(row.created)) }
                            td { (time_element(row.last_seen)) }
                            td { (row.user_agent.as_deref().unwrap_or("unknown")) }
                            td {
                                @if row.current {
                                    "—"
                                } @else {
                                    form.inline method="post" action="/sessions/sign-out" {
                                        input type="hidden" name="session" value=(row.short);
                                        button type="submit" aria-label={ "Sign out session " (row.short) } {
                                            "Sign out this one"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p {
                form.inline method="post" action="/sign-out-everywhere" {
                    button #sign-out-everywhere type="submit" { "Sign out everywhere" }
                }
                " "
                (sign_out_form())
            }
        },
    )
}

/// An error page: a heading, a sentence, and the way back.
pub(crate) fn error(title: &str, message: &str, owner: Option<&str>) -> Markup {
    layout(
        title,
        owner,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/" { "Back to the home page" } }
        },
    )
}

fn time_element(t: Timestamp) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (friendly_utc(t)) } }
}

/// `2026-11-21 22:10:37 UTC`.
pub(crate) fn friendly_utc(t: Timestamp) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millis()) * 1_000_000)
        .ok()
        .and_then(|dt| dt.format(format).ok())
        .unwrap_or_else(|| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_escapes_the_name_and_pluralises() {
        let page = home(1, Some("<b>ada</b> & co")).into_string();
        assert!(page.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(page.contains("<title>Home · sessionbank demo</title>"));
        assert!(page.contains("visited this page <strong>1</strong> time."));
        assert!(page.contains("Signed in as <strong>&lt;b&gt;ada&lt;/b&gt; &amp; co</strong>"));
        assert!(!page.contains("<b>ada"));
        let page = home(3, None).into_string();
        assert!(page.contains("<strong>3</strong> times."));
        assert!(page.contains("<label for=\"name\">"));
        assert!(page.contains("id=\"name\""));
        assert!(page.contains("method=\"post\" action=\"/sign-in\""));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn sessions_marks_the_current_row_and_offers_sign_out_for_others() {
        let t = Timestamp::from_millis(1_700_000_000_000);
        let rows = [
            SessionRow {
                short: "AAAAaaaa".into(),
                created: t,
                last_seen: t,
                user_agent: Some("<UA>".into()),
                current: true,
            },
            SessionRow {
                short: "BBBBbbbb".into(),
                created: t,
                last_seen: t,
                user_agent: None,
                current: false,
            },
        ];
        let page = sessions("ada", &rows).into_string();
        assert!(page.contains("2 live sessions."));
        assert!(page.contains("AAAAaaaa</code> <strong class=\"current\">(this session)"));
        assert!(page.contains("&lt;UA&gt;"));
        assert!(page.contains("name=\"session\" value=\"BBBBbbbb\""));
        assert!(!page.contains("name=\"session\" value=\"AAAAaaaa\""));
        assert!(page.contains("datetime=\"2023-11-14T22:13:20.000Z\">2023-11-14 22:13:20 UTC<"));
        assert!(page.contains("action=\"/sign-out-everywhere\""));
        assert!(page.contains("action=\"/sign-out\""));
    }

    #[test]
    fn error_page_escapes_its_message() {
        let page = error("Bad name", "<x>", None).into_string();
        assert!(page.contains("role=\"alert\">&lt;x&gt;</p>"));
    }
}
