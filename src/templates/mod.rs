//! The HTML the service and the CLI write — recipients' pages, the display notice of a mail,
//! the printable evidence report — as minijinja templates in this directory, compiled into the
//! binary. Values are escaped on output (auto-escaping for `.html` templates, by the one
//! [`crate::escape_html`]); Rust code prepares values, never markup. The wording, Japanese and
//! English, lives in the templates. Not here: HTTP headers and status codes (`api::pages`).

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, Value};

/// Every template, by file name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("layout.html")),
    ("confirm.html", include_str!("confirm.html")),
    ("confirmed.html", include_str!("confirmed.html")),
    (
        "nothing_to_confirm.html",
        include_str!("nothing_to_confirm.html"),
    ),
    ("not_recorded.html", include_str!("not_recorded.html")),
    ("busy.html", include_str!("busy.html")),
    ("invalid_link.html", include_str!("invalid_link.html")),
    ("unsubscribed.html", include_str!("unsubscribed.html")),
    ("unsubscribe.html", include_str!("unsubscribe.html")),
    ("display_notice.html", include_str!("display_notice.html")),
    ("report.html", include_str!("report.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Our own escaping (no `/` → `&#x2f;`): the same text as before templates, and URLs in a
    // mail's footer stay readable.
    env.set_formatter(
        |out, state, value| match (state.auto_escape(), value.as_str()) {
            (AutoEscape::Html, Some(text)) if !value.is_safe() => {
                out.write_str(&crate::escape_html(text))?;
                Ok(())
            }
            _ => minijinja::escape_formatter(out, state, value),
        },
    );
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e:#}"));
    }
    env
});

/// Renders template `name` with `context` (`minijinja::context!{…}`, or
/// `Value::from_serialize` of a struct).
/// The templates are compiled in and tested, so a failure is a bug of ours: it is logged and
/// the text says so rather than taking the process down.
pub fn render(name: &str, context: Value) -> String {
    let rendered = ENV.get_template(name).and_then(|t| t.render(context));
    rendered.unwrap_or_else(|e| {
        tracing::error!(template = name, error = %format!("{e:#}"), "a template failed");
        format!("<p>internal error: template {name} failed</p>")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn values_are_escaped_in_html_templates() {
        let html = render(
            "unsubscribed.html",
            minijinja::context! { lang => "en", sender => "<script>&\"'", since => "now" },
        );
        assert!(
            html.contains("<strong>&lt;script&gt;&amp;&quot;&#39;</strong>"),
            "{html}"
        );
    }
}
