//! The HTML and text the service and the CLI write — recipients' pages, the display notice of a
//! mail (HTML and plain text), the printable evidence report — as minijinja templates in this directory, compiled into the
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
    ("display_notice.txt", include_str!("display_notice.txt")),
    ("report.html", include_str!("report.html")),
    ("verify.html", include_str!("verify.html")),
    ("verify_summary.html", include_str!("verify_summary.html")),
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

/// Renders template `name` with `context` (escaped for HTML when `name` ends in `.html`) (`minijinja::context!{…}`, or
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

    fn notice(lang: &str) -> Value {
        let contact = |text: &str, kind: &str, href: &str| minijinja::context! { text, kind, href };
        minijinja::context! {
            lang,
            legal_name => "Shop & Co",
            optout => contact("https://shop.example/u?a=1&b=2", "url", "https://shop.example/u?a=1&b=2"),
            postal => "東京都千代田区1-2-3",
            complaint => contact("help@shop.example", "mailto", "mailto:help@shop.example"),
        }
    }

    #[test]
    fn the_display_notice_names_the_responsible_party_and_the_purpose() {
        let with = |lang: &str| {
            minijinja::context! { responsible => "配信代行 K.K.", purpose => "メールマガジン", ..notice(lang) }
        };
        let ja = render("display_notice.txt", with("ja"));
        assert!(
            ja.starts_with(
                "送信者: Shop & Co\n送信責任者: 配信代行 K.K.\n配信停止（メールマガジン）: "
            ),
            "{ja}"
        );
        let en = render("display_notice.html", with("en"));
        assert!(
            en.contains(
                "<p>Responsible for sending: 配信代行 K.K.</p><p>Unsubscribe (メールマガジン): "
            ),
            "{en}"
        );
    }

    #[test]
    fn the_display_notice_in_plain_text_is_four_lines_unescaped() {
        assert_eq!(
            render("display_notice.txt", notice("ja")),
            "送信者: Shop & Co\n配信停止: 今後このようなメールの受信を希望されない場合は、こちらから配信を停止できます（受信を拒否することができます）。 https://shop.example/u?a=1&b=2\n住所: 東京都千代田区1-2-3\n苦情・お問い合わせ: help@shop.example\n"
        );
        assert_eq!(
            render("display_notice.txt", notice("en")),
            "Sender: Shop & Co\nUnsubscribe: You may refuse further e-mail like this at any time; to stop it, use https://shop.example/u?a=1&b=2\nPostal address: 東京都千代田区1-2-3\nComplaints and enquiries: help@shop.example\n"
        );
    }

    #[test]
    fn the_display_notice_in_html_links_its_contacts() {
        assert_eq!(
            render("display_notice.html", notice("en")),
            "<div lang=\"en\"><p>Sender: Shop &amp; Co</p><p>Unsubscribe: You may refuse further e-mail like this at any time; to stop it, use <a href=\"https://shop.example/u?a=1&amp;b=2\">https://shop.example/u?a=1&amp;b=2</a></p><p>Postal address: 東京都千代田区1-2-3</p><p>Complaints and enquiries: <a href=\"mailto:help@shop.example\">help@shop.example</a></p></div>"
        );
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
